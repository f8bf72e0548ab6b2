"""`space.canonical`: one representative per network, checked against independent models of what a cell computes."""

import itertools
from collections import defaultdict

import numpy as np
import pytest
import torch

from supernets import Arch, cost, create_supernet, get_space, list_supernets
from supernets.nb201 import EDGES, OPS


@pytest.mark.parametrize("name", list_supernets())
def test_canonical_is_an_idempotent_member_of_the_space(name, rng):
    space = get_space(name)
    for a in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(20)]:
        c = space.canonical(a)
        assert isinstance(c, Arch) and c.space.fingerprint == space.fingerprint
        assert space.canonical(c) == c
        assert cost(c).macs <= cost(a).macs  # the representative never costs more (dead ops pruned)


def test_spaces_without_a_rule_map_each_arch_to_itself(rng):
    space = get_space("mbv3_test")
    a = space.sample(rng)
    assert space.canonical(a) is a
    with pytest.raises(ValueError, match="not an arch of this space"):
        space.canonical(get_space("nb201_test").smallest())


# --------------------------------------------------------------------------- macro
@pytest.mark.parametrize("key, expected", [
    ("22212202", "22212220"),  # the benchmark's best, written two ways
    ("22212220", "22212220"),
    ("01001010", "01010010"),  # stage 2: identity moves behind the inverted residual
    ("00000000", "00000000"),
    ("20000000", "20000000"),  # a stage's first layer is strided: its identity is a conv and stays put
    ("02000000", "02000000"),
    ("10102201", "10120210"),
])
def test_macro_identities_move_to_the_end_of_their_stage(key, expected):
    space = get_space("macro")
    assert str(space.canonical(Arch.from_str(space, key))) == expected


def test_macro_count_of_distinct_networks():
    space = get_space("macro")
    # Per stage: 3 choices for the strided first layer, then the order of the non-identity ops among the m
    # shape-keeping layers (identities trailing): sum over j = 0..m of 2^j sequences.
    expected = 1
    for m in (1, 2, 2):
        expected *= 3 * sum(2**j for j in range(m + 1))
    assert len({space.canonical(a) for a in space}) == expected == 3969


def test_macro_equivalents_compute_the_same_function_when_positions_share_weights(rng):
    """Tie each stage's shape-keeping layers to one set of weights per op: then only the op order can matter."""
    torch.manual_seed(0)
    net = create_supernet("macro_test").eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.bias.data.normal_(0, 0.1)
    plan = net.config.plan()
    for i in range(1, len(plan)):
        if plan[i][2] == 1 and plan[i - 1][2] == 1:  # follows another shape-keeping layer of the stage
            # copy, not share the module: each layer's LayerChoice reads its own decision
            net.layers[i].load_state_dict(net.layers[i - 1].state_dict())
    x = torch.randn(2, 3, 8, 8)
    space = net.space
    with torch.no_grad():
        for _ in range(30):
            a = space.sample(rng)
            c = space.canonical(a)
            assert (net(x, a) - net(x, c)).abs().max() < 1e-6, (str(a), str(c))
        # Different classes differ.
        a, b = Arch.from_str(space, "00012000"), Arch.from_str(space, "00021000")
        assert space.canonical(a) != space.canonical(b)
        assert (net(x, a) - net(x, b)).abs().max() > 1e-4  # at init the residual branches are small


# --------------------------------------------------------------------------- nb201
def _cell_outputs(seed: int = 0) -> dict[tuple[str, ...], np.ndarray]:
    """Every cell evaluated in a numeric model where each op is one fixed random function of its input node.

    conv1x1 / conv3x3: tanh(W v) (non-linear, zero at zero, so an op on zeros is zero as in the NAS-Bench-201
    convention); avg_pool: a fixed random linear map; skip: identity; none: zero. Equal cells give equal vectors
    (up to float rounding), different ones differ for generic weights.
    """
    r = np.random.default_rng(seed)
    d = 6
    w = {"nor_conv_1x1": r.normal(size=(d, d)), "nor_conv_3x3": r.normal(size=(d, d)), "avg_pool_3x3": r.normal(size=(d, d))}
    fns = {
        "none": lambda v: np.zeros(d),
        "skip_connect": lambda v: v,
        "avg_pool_3x3": lambda v: w["avg_pool_3x3"] @ v,
        "nor_conv_1x1": lambda v: np.tanh(w["nor_conv_1x1"] @ v),
        "nor_conv_3x3": lambda v: np.tanh(w["nor_conv_3x3"] @ v),
    }
    x = r.normal(size=d)
    out = {}
    for ops in itertools.product(OPS, repeat=6):
        edge = dict(zip(EDGES, ops))
        nodes = [x]
        for to in (1, 2, 3):
            nodes.append(sum(fns[edge[(to, f)]](nodes[f]) for f in range(to)))
        out[ops] = nodes[3]
    return out


def _paper_key(edge: dict) -> str:
    """The isomorphism key behind the NAS-Bench-201 paper's count: sorted text sums, '#' for zero terms."""
    nodes = {0: "0"}
    for to in (1, 2, 3):
        terms = []
        for f in range(to):
            op = edge[(to, f)]
            if op == "none" or nodes[f] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[f])
            else:
                terms.append(f"({nodes[f]})@{op}")
        nodes[to] = "+".join(sorted(terms))
    return nodes[3]


@pytest.fixture(scope="module")
def nb201_classes() -> dict[tuple[str, ...], tuple]:
    space = get_space("nb201")
    return {tuple(str(v) for _, v in a.values): space.canonical(a) for a in space}


def test_nb201_canonical_classes_are_exactly_the_distinct_cell_functions(nb201_classes):
    outputs = _cell_outputs()
    by_class = defaultdict(list)
    for ops, c in nb201_classes.items():
        by_class[c].append(outputs[ops])
    for vectors in by_class.values():  # sound: every member computes the class's function
        assert max(np.abs(v - vectors[0]).max() for v in vectors) < 1e-9
    reps = np.stack([vs[0] for vs in by_class.values()])
    distinct_functions = len({tuple(np.round(v, 6)) for v in outputs.values()})
    assert len({tuple(np.round(v, 6)) for v in reps}) == len(by_class)  # complete: classes differ from each other
    assert len(by_class) == distinct_functions == 4660


def test_nb201_merges_everything_the_paper_calls_the_same(nb201_classes):
    paper: dict[str, set] = defaultdict(set)
    for ops, c in nb201_classes.items():
        paper[_paper_key(dict(zip(EDGES, ops)))].add(c)
    assert len(paper) == 6466  # the count published with NAS-Bench-201
    assert all(len(cs) == 1 for cs in paper.values())  # each paper class lies within one of ours


def test_nb201_representative_prunes_dead_edges():
    space = get_space("nb201")
    # Node 1 is zero (its only input is `none`), so the convs reading it are dead; 3<-2 reads a dead node 2.
    a = Arch.from_str(space, "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|")
    c = space.canonical(a)
    assert str(c) == "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    dead_output = Arch.from_str(space, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert space.canonical(dead_output) == space.smallest()  # the output node is zero: the all-`none` cell
