"""Path samplers: conformance for every registered sampler, exact FairNAS counts, sandwich layout."""

from __future__ import annotations

import pytest

from oneshot.training.path_samplers import (
    FairSampler, PathSampler, activation_counts, create_path_sampler, list_path_samplers, path_sampler_from_state,
)
from supernets import Decision, SearchSpace, get_space

SPACES = ["mbv3_test", "mbv3_tiny", "nb201_test", "macro_test", "vit_test", "vit_tiny"]


def uneven_space() -> SearchSpace:
    """Decisions with 2, 3 and 4 choices (m = 4) plus a nested conditional chain."""
    return SearchSpace("uneven", (
        Decision("a", (0, 1)),
        Decision("b", ("x", "y", "z")),
        Decision("c", (1, 2, 3, 4)),
        Decision("d", (10, 20, 30), when=("c", (3, 4))),
        Decision("e", ("p", "q"), when=("d", (20, 30))),
    ))


@pytest.mark.parametrize("name", list_path_samplers())
@pytest.mark.parametrize("space_name", SPACES)
def test_conformance(name: str, space_name: str) -> None:
    space = get_space(space_name)
    s = create_path_sampler(name, space, seed=3)
    assert isinstance(s, PathSampler) and s.name == name
    first = s.paths(5)
    assert first and all(p.space.fingerprint == space.fingerprint for p in first)
    assert first == create_path_sampler(name, space, seed=3).paths(5)  # a pure function of (seed, step)
    assert len(s.paths(6)) == len(first) == s.paths_per_step
    steps = [tuple(s.paths(k)) for k in range(8)]
    if name != "sandwich":  # sandwich repeats largest/smallest, but its random part still varies
        assert len(set(steps)) > 1
    assert [s.paths(k) for k in range(8)] != [create_path_sampler(name, space, seed=4).paths(k) for k in range(8)]
    rebuilt = path_sampler_from_state(space, s.state_dict())
    assert type(rebuilt) is type(s) and [rebuilt.paths(k) for k in range(4)] == [s.paths(k) for k in range(4)]


def test_state_refuses_other_sampler_and_space() -> None:
    fair = create_path_sampler("fair", get_space("mbv3_test"), seed=1)
    with pytest.raises(ValueError, match="sampler state is for 'uniform'"):
        fair.load_state_dict(create_path_sampler("uniform", get_space("mbv3_test")).state_dict())
    with pytest.raises(ValueError, match="fingerprint"):
        fair.load_state_dict(create_path_sampler("fair", get_space("nb201_test")).state_dict())
    with pytest.raises(ValueError, match="settings"):
        create_path_sampler("sandwich", get_space("mbv3_test"), num_random=1).load_state_dict(
            create_path_sampler("sandwich", get_space("mbv3_test"), num_random=2).state_dict())


def test_unknown_sampler_and_bad_args() -> None:
    with pytest.raises(ValueError, match="unknown path sampler 'fairnas'.*fair"):
        create_path_sampler("fairnas", get_space("mbv3_test"))
    with pytest.raises(ValueError, match="bad arguments"):
        create_path_sampler("fair", get_space("mbv3_test"), num_random=2)
    with pytest.raises(ValueError, match="step must be >= 0"):
        create_path_sampler("uniform", get_space("mbv3_test")).paths(-1)


@pytest.mark.parametrize("space_name", SPACES + ["uneven"])
def test_fair_counts_per_step(space_name: str) -> None:
    space = uneven_space() if space_name == "uneven" else get_space(space_name)
    sampler = FairSampler(space, seed=0)
    m = max(len(d.choices) for d in space.decisions)
    for step in range(40):
        paths = sampler.paths(step)
        assert len(paths) == m
        counts = activation_counts(space, paths)
        for d in space.decisions:
            c = list(counts[d.name].values())
            active = sum(1 for p in paths if d.name in p)
            assert sum(c) == active
            if d.when is None:
                assert active == m
                if m % len(d.choices) == 0:  # divides evenly: every choice exactly m/n times
                    assert c == [m // len(d.choices)] * len(d.choices), (d.name, counts[d.name])
            assert max(c) - min(c) <= 1, (step, d.name, counts[d.name])  # within one otherwise


def test_fair_exact_once_when_all_decisions_have_m_choices() -> None:
    space = get_space("nb201_test")  # 6 edges x 5 ops: every op of every edge exactly once per step
    for step in range(20):
        for name, counter in activation_counts(space, FairSampler(space, seed=7).paths(step)).items():
            assert set(counter.values()) == {1}, (name, counter)


def test_fair_uneven_choices_exact_split() -> None:
    space = uneven_space()  # m = 4: 'a' (2 choices) exactly twice each; 'b' (3 choices) 2/1/1
    for step in range(30):
        counts = activation_counts(space, FairSampler(space, seed=1).paths(step))
        assert sorted(counts["a"].values()) == [2, 2]
        assert sorted(counts["b"].values()) == [1, 1, 2]
        assert sorted(counts["c"].values()) == [1, 1, 1, 1]
        assert sorted(counts["d"].values()) == [0, 1, 1]  # active in the 2 paths with c in (3, 4)


def test_fair_remainders_balance_over_steps() -> None:
    space = uneven_space()
    total = {c: 0 for c in ("x", "y", "z")}
    for step in range(300):
        for choice, n in activation_counts(space, FairSampler(space, seed=2).paths(step))["b"].items():
            total[choice] += n
    assert all(abs(v - 400) < 60 for v in total.values()), total  # 1200 activations, 400 each expected


def test_uniform_one_path_covers_choices() -> None:
    space = get_space("mbv3_test")
    s = create_path_sampler("uniform", space, seed=0)
    seen = activation_counts(space, [p for k in range(60) for p in s.paths(k)])
    assert all(len(s.paths(k)) == 1 for k in range(5))
    assert all(min(c.values()) > 0 for c in seen.values())


def test_sandwich_layout_and_teacher() -> None:
    space = get_space("mbv3_tiny")
    s = create_path_sampler("sandwich", space, seed=0, num_random=3, distill=True)
    paths = s.paths(11)
    assert len(paths) == 5 and paths[0] == space.largest() and paths[1] == space.smallest()
    assert s.teacher and not create_path_sampler("sandwich", space).teacher
    assert not create_path_sampler("fair", space).teacher
    with pytest.raises(ValueError, match="num_random"):
        create_path_sampler("sandwich", space, num_random=-1)
