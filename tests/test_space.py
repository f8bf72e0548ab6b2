"""Search spaces and subnets: canonical values, round-tripping strings, clear errors, counting."""

import json
import pickle

import numpy as np
import pytest

from supernets import Arch, Decision, SearchSpace, get_space, list_supernets

ALL_SPACES = list_supernets()
SMALL_SPACES = ["mbv3_test", "nb201_test"]


def toy_space() -> SearchSpace:
    return SearchSpace(
        "toy",
        (
            Decision("depth", (1, 2)),
            Decision("k0", (3, 5)),
            Decision("k1", (3, 5), when=("depth", (2,))),
        ),
    )


@pytest.mark.parametrize("name", ALL_SPACES)
def test_string_and_json_round_trip(name, rng):
    space = get_space(name)
    for _ in range(50):
        a = space.sample(rng)
        assert Arch.from_str(space, str(a)) == a
        assert str(Arch.from_str(space, str(a))) == str(a)
        assert Arch.from_json(space, json.loads(json.dumps(a.to_json()))) == a
        assert pickle.loads(pickle.dumps(a)) == a
    for a in (space.smallest(), space.largest()):
        assert Arch.from_str(space, str(a)) == a


@pytest.mark.parametrize("name", SMALL_SPACES)
def test_size_matches_enumeration_and_archs_are_distinct(name):
    space = get_space(name)
    archs = list(space)
    assert len(archs) == space.size()
    assert len(set(archs)) == len(archs)
    assert len({str(a) for a in archs}) == len(archs)


def test_sizes_of_registered_spaces():
    assert get_space("nb201").size() == 5**6
    # mbv3_tiny: per stage 3 widths x sum over depth d in (1,2,3) of 9^d, three stages.
    assert get_space("mbv3_tiny").size() == (3 * (9 + 81 + 729)) ** 3


def test_inactive_decisions_are_dropped_so_one_network_has_one_value():
    space = toy_space()
    a = space.make({"depth": 1, "k0": 3, "k1": 5})
    b = space.make({"depth": 1, "k0": 3, "k1": 3})
    assert a == b and hash(a) == hash(b) and str(a) == str(b)
    assert "k1" not in a
    assert space.size() == 2 + 4


def test_values_are_coerced_from_text():
    space = get_space("mbv3_test")
    a = space.largest()
    b = space.make({k: str(v) for k, v in a.values})
    assert a == b


@pytest.mark.parametrize(
    "space_name, text, message",
    [
        ("mbv3_test", "w1.0:k3e2/w1.0:k9e2", "k"),  # kernel 9 not a choice
        ("mbv3_test", "w1.0:k3e2", "has 2"),  # wrong number of stages
        ("mbv3_test", "w1.0:k3e2/w0.3:k3e2", "s1.w"),  # width not a choice
        ("mbv3_test", "w1.0:k3e2-k3e2-k3e2/w1.0:k3e2", "s0.d"),  # depth 3 not allowed
        ("mbv3_test", "w1.0:k3x2/w1.0:k3e2", "k<kernel>e<expand>"),
        ("mbv3_test", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "another space"),
        ("nb201_test", "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "allowed"),
        ("nb201_test", "|none~0|+|none~0|+|none~0|none~1|none~2|", "2 input edge"),
        ("nb201_test", "w1.0:k3e2/w1.0:k3e2", "NAS-Bench-201 notation"),
        ("macro_test", "2221222", "has 7 digit"),  # one layer short
        ("macro_test", "222122200", "has 9 digit"),
        ("macro_test", "", "has 0 digit"),
        ("macro_test", "22212320", "'3' at position 6"),
        ("macro_test", "2221222x", "'x' at position 8"),
        ("macro_test", "2221 220", "' ' at position 5"),
    ],
)
def test_invalid_strings_raise_naming_the_problem(space_name, text, message):
    with pytest.raises(ValueError, match=message):
        Arch.from_str(get_space(space_name), text)


def test_errors_name_decision_and_allowed_choices():
    space = get_space("nb201_test")
    with pytest.raises(ValueError, match=r"'1<-0'.*allowed: \['none', 'skip_connect'"):
        space.make({**space.smallest().as_dict(), "1<-0": "conv_9x9"})
    with pytest.raises(ValueError, match="unknown decision"):
        space.make({**space.smallest().as_dict(), "4<-0": "none"})
    with pytest.raises(ValueError, match="missing decision '3<-2'"):
        space.make({k: v for k, v in space.smallest().values if k != "3<-2"})


def test_archs_of_different_spaces_never_compare_equal():
    a = get_space("nb201_test").smallest()
    b = get_space("nb201_small").smallest()
    assert str(a) == str(b) and a != b
    with pytest.raises(ValueError, match="recorded for space"):
        Arch.from_json(get_space("nb201_small"), a.to_json())


def test_nb201_string_is_the_benchmark_notation():
    space = get_space("nb201")
    text = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    a = Arch.from_str(space, text)
    assert str(a) == text
    assert a["2<-1"] == "avg_pool_3x3" and a["3<-2"] == "nor_conv_3x3"


def test_macro_string_is_the_benchmark_key():
    space = get_space("macro")
    a = Arch.from_str(space, "22212220")
    assert str(a) == "22212220" and len(space) == 8 and space.size() == 3**8
    assert a["layer3"] == "ir_k3_e3" and a["layer7"] == "id" and a["layer0"] == "ir_k5_e6"
    assert str(space.smallest()) == "00000000" and str(space.largest()) == "22222222"


def test_mbv3_string_omits_blocks_removed_by_depth():
    space = get_space("mbv3_test")
    a = space.make({"s0.w": 0.5, "s0.d": 1, "s0.b0.k": 5, "s0.b0.e": 3, "s0.b1.k": 3, "s0.b1.e": 2,
                    "s1.w": 1.0, "s1.d": 2, "s1.b0.k": 3, "s1.b0.e": 2, "s1.b1.k": 5, "s1.b1.e": 3})
    assert str(a) == "w0.5:k5e3/w1.0:k3e2-k5e3"


def test_sampling_is_reproducible_and_covers_choices():
    space = get_space("nb201_test")
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(1)
    seen = {space.sample(rng)["1<-0"] for _ in range(200)}
    assert seen == set(space["1<-0"].choices)


def test_space_validation():
    with pytest.raises(ValueError, match="declared before"):
        SearchSpace("bad", (Decision("k", (3,), when=("d", (1,))), Decision("d", (1, 2))))
    with pytest.raises(ValueError, match="repeats"):
        Decision("x", (1, 1))
