"""Predictor encodings: derived from the space, inactive decisions distinct, NAS-Bench-201 path encoding properties."""

import numpy as np
import pytest

from predictors.encodings import get_encoding, list_encodings
from supernets import Arch, Decision, NB201Config, SearchSpace, get_space

SPACES = ["mbv3_test", "nb201_test", "mbv3_tiny", "nb201", "macro_test", "macro"]


def _sample(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("space_name", SPACES)
def test_every_applicable_encoding_gives_finite_matrix_of_its_dim(space_name):
    space = get_space(space_name)
    archs = _sample(space, 30)
    names = list_encodings(space)
    assert {"onehot", "ordinal"} <= set(names)
    for name in [*names, "+".join(names)]:
        enc = get_encoding(name, space)
        X = enc.encode(archs)
        assert X.shape == (30, enc.dim) and len(enc.feature_names) == enc.dim
        assert np.isfinite(X).all()
        np.testing.assert_array_equal(X, enc.encode(archs))  # a pure function of the archs


def test_onehot_marks_inactive_decisions_in_their_own_column():
    space = get_space("mbv3_test")
    enc = get_encoding("onehot", space)
    archs = list(space)  # all 1600 subnets
    X = enc.encode(archs)
    for d in space.decisions:
        cols = [i for i, f in enumerate(enc.feature_names) if f.split("=")[0] == d.name]
        assert len(cols) == len(d.choices) + (d.when is not None)
        np.testing.assert_array_equal(X[:, cols].sum(1), 1.0)  # exactly one column per decision, always
        if d.when is not None:
            inactive = enc.feature_names.index(f"{d.name}=<inactive>")
            np.testing.assert_array_equal(X[:, inactive], [d.name not in a for a in archs])
    assert len({row.tobytes() for row in X}) == len(archs)  # distinct subnets never share an encoding


def test_ordinal_is_index_scaled_and_minus_one_when_inactive():
    space = get_space("mbv3_test")
    enc = get_encoding("ordinal", space)
    small, large = space.smallest(), space.largest()
    X = enc.encode([small, large])
    for j, d in enumerate(space.decisions):
        assert X[0, j] == (0.0 if d.name in small else -1.0)
        assert X[1, j] == (1.0 if d.name in large else -1.0)


def test_nb201_path_encoding_counts_input_output_paths():
    space = get_space("nb201")
    enc = get_encoding("path", space)
    assert len(enc.paths) == 4 and sorted(len(p) for p in enc.paths) == [1, 2, 2, 3]
    assert enc.ops == ("skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")
    assert enc.dim == 4 + 4**2 + 4**3
    conv = "nor_conv_3x3"
    values = {d.name: conv for d in space.decisions}
    X = enc.encode([
        space.largest(),
        space.smallest(),  # all `none`: no path survives
        space.make({**values, "3<-0": "none"}),  # the direct edge cut: 3 paths left
        space.make({**values, "1<-0": "none"}),  # cuts 0->1->3 and 0->1->2->3
    ])
    np.testing.assert_array_equal(X.sum(1), [4, 0, 3, 2])
    row = dict(zip(enc.feature_names, X[0]))
    assert row[conv] == 1 and row[f"{conv}>{conv}"] == 2 and row[f"{conv}>{conv}>{conv}"] == 1
    # The op on an edge no path uses does not matter: 1<-0 is `none`, so 2<-1 and 3<-1 are dead.
    a = space.make({**values, "1<-0": "none", "2<-1": "skip_connect"})
    b = space.make({**values, "1<-0": "none", "2<-1": "avg_pool_3x3", "3<-1": "nor_conv_1x1"})
    np.testing.assert_array_equal(enc.encode([a]), enc.encode([b]))


def test_path_encoding_follows_ops_and_edges_of_the_space_not_a_fixed_list():
    space = NB201Config(ops=("none", "skip_connect", "nor_conv_3x3")).search_space("nb201_3ops")
    enc = get_encoding("path", space)
    assert enc.ops == ("skip_connect", "nor_conv_3x3") and enc.dim == 2 + 4 + 8
    assert get_encoding("onehot", space).dim == 6 * 3
    toy = SearchSpace("toy_dag", (Decision("1<-0", ("none", "a", "b")), Decision("2<-0", ("none", "a")),
                                  Decision("2<-1", ("a", "b"))))
    enc = get_encoding("path", toy)
    assert enc.paths == [("2<-0",), ("1<-0", "2<-1")]
    x = enc.encode([Arch.from_str(toy, "1<-0=b,2<-0=a,2<-1=a")])[0]
    assert dict(zip(enc.feature_names, x)) == {"a": 1, "b": 0, "a>a": 0, "b>a": 1, "a>b": 0, "b>b": 0}


def test_cost_encoding_spans_smallest_to_largest():
    for name in ["mbv3_test", "nb201_test"]:
        space = get_space(name)
        X = get_encoding("cost", space).encode([space.smallest(), space.largest()])
        np.testing.assert_allclose(X, [[0, 0], [1, 1]])


def test_encoding_errors_name_the_problem():
    mbv3 = get_space("mbv3_test")
    with pytest.raises(ValueError, match="does not apply to space 'mbv3_test'.*usable here"):
        get_encoding("path", mbv3)
    with pytest.raises(ValueError, match="unknown encoding.*'bogus'"):
        get_encoding("onehot+bogus", mbv3)
    generic = SearchSpace("generic", (Decision("a", (1, 2)),))
    assert "cost" not in list_encodings(generic) and "path" not in list_encodings(generic)
    assert get_encoding("onehot+ordinal", mbv3).dim == get_encoding("onehot", mbv3).dim + len(mbv3)
