"""Zero-cost proxies against hand-worked values, their invariants, the cached proxy table and the zc encoding."""

from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oneshot.score.proxies import get_proxy, list_proxies, register_proxy, score_many
from oneshot.score.proxy_table import ProxyBatch, ProxyLookup, proxy_columns, score_proxies
from predictors import create_predictor, fit_predictors, get_encoding, load_predictor
from predictors.encodings import ZCEncoding
from supernets import count_cost, create_supernet, extract, get_config, get_space

ALL = ["synflow", "jacov", "nwot", "snip", "grad_norm", "fisher", "grasp", "zen", "meco", "zico", "params", "flops"]


def _batch(n: int = 6, c: int = 3, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def _mlp(d: int = 12, h: int = 5, o: int = 3, bias: bool = True, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, h, bias=bias), nn.ReLU(), nn.Linear(h, o, bias=bias))


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_registry_has_the_published_proxies_and_refuses_duplicates():
    assert set(ALL) <= set(list_proxies())
    with pytest.raises(ValueError, match="already registered"):
        register_proxy("synflow")(lambda net, x, y: 0.0)
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        get_proxy("nope")


# --------------------------------------------------------------------------- values worked out independently
def test_synflow_of_two_layer_linear_net_is_closed_form():
    # R = 1^T |W2| |W1| 1 (all units active once weights are positive); R is linear in each layer's weights, so
    # sum(theta * dR/dtheta) over a layer is R (Euler), and synflow over both layers is 2R. BN is removed.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False), nn.BatchNorm1d(5), nn.ReLU(),
                        nn.Linear(5, 3, bias=False))
    w1, w2 = net[1].weight.detach().double().abs(), net[4].weight.detach().double().abs()
    r = float((w2 @ w1 @ torch.ones(12, dtype=torch.float64)).sum())
    images, labels = _batch(4, 3, 2)
    assert get_proxy("synflow")(net, images, labels) == pytest.approx(2 * r, rel=1e-12)


def test_nwot_is_logdet_of_hand_built_hamming_kernel():
    net = _mlp()
    images, labels = _batch(6, 3, 2)
    pre = images.flatten(1) @ net[1].weight.detach().T + net[1].bias.detach()  # (6, 5), the ReLU input
    codes = (pre > 0).numpy().astype(int)
    units = codes.shape[1]
    hamming = np.array([[np.sum(a != b) for b in codes] for a in codes])
    sign, logdet = np.linalg.slogdet((units - hamming).astype(float))
    value = get_proxy("nwot")(net, images, labels)
    if sign > 0:
        assert value == pytest.approx(logdet, rel=1e-9)
    else:
        assert math.isnan(value)


def test_jacov_of_linear_net_has_closed_form():
    # f(x) = W x: every image's Jacobian row is W^T 1, so the correlation matrix is all ones, with eigenvalues
    # B (once) and 0 (B - 1 times); score = -sum(log(v + k) + 1 / (v + k)), k = 1e-5.
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    images, labels = _batch(5, 3, 2)
    k, b = 1e-5, 5
    expected = -((math.log(b + k) + 1 / (b + k)) + (b - 1) * (math.log(k) + 1 / k))
    assert get_proxy("jacov")(net, images, labels) == pytest.approx(expected, rel=1e-6)


def _manual_grads(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    net = copy.deepcopy(net)
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grads = torch.autograd.grad(F.cross_entropy(net(images), labels), weights)
    return [(w.detach(), g) for w, g in zip(weights, grads)]


def test_grad_norm_and_snip_match_manual_autograd():
    net = _mlp()
    images, labels = _batch(6, 3, 2)
    labels = labels % 3
    pairs = _manual_grads(net, images, labels)
    assert get_proxy("grad_norm")(net, images, labels) == pytest.approx(sum(float(g.norm()) for _, g in pairs), rel=1e-6)
    assert get_proxy("snip")(net, images, labels) == pytest.approx(
        sum(float((w * g).abs().sum()) for w, g in pairs), rel=1e-6)


def test_fisher_matches_activation_gradients_computed_by_hand():
    net = _mlp()
    images, labels = _batch(6, 3, 2)
    labels = labels % 3
    a1 = net[1](images.flatten(1))
    a2 = net[3](torch.relu(a1))
    g1, g2 = torch.autograd.grad(F.cross_entropy(a2, labels), [a1, a2])
    expected = sum(float(0.5 * (a.detach() * g).pow(2).mean(0).sum()) for a, g in ((a1, g1), (a2, g2)))
    assert get_proxy("fisher")(net, images, labels) == pytest.approx(expected, rel=1e-5)


def test_grasp_matches_full_hessian():
    net = _mlp(d=12, h=3, o=2, bias=False)
    images, labels = _batch(4, 3, 2)
    labels = labels % 2
    shapes = [net[1].weight.shape, net[3].weight.shape]
    theta = torch.cat([net[1].weight.detach().flatten(), net[3].weight.detach().flatten()]).double()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        w1 = flat[: shapes[0].numel()].view(shapes[0])
        w2 = flat[shapes[0].numel():].view(shapes[1])
        return F.cross_entropy(torch.relu(images.double().flatten(1) @ w1.T) @ w2.T, labels)

    g = torch.autograd.functional.jacobian(loss, theta)
    hess = torch.autograd.functional.hessian(loss, theta)
    expected = float(-(theta * (hess @ g)).sum())
    assert get_proxy("grasp")(net, images, labels) == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_meco_is_one_minus_the_channel_correlation_of_the_first_image():
    # A 1x1 convolution with identity weights passes the two channels through: the correlation matrix of the
    # first image's two channels is [[1, r], [r, 1]], with smallest eigenvalue 1 - |r|. The flatten and linear
    # outputs are 2-D (add 0), and wrapping the convolution in containers must not count its map again.
    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2).reshape(2, 2, 1, 1))
    images, labels = _batch(3, 2, 4)
    a, b = images[0, 0].flatten().double().numpy(), images[0, 1].flatten().double().numpy()
    r = np.corrcoef(a, b)[0, 1]
    for net in (nn.Sequential(conv, nn.Flatten(), nn.Linear(32, 3)),
                nn.Sequential(nn.Sequential(nn.Sequential(conv)), nn.Flatten(), nn.Linear(32, 3))):
        assert get_proxy("meco")(net, images, labels) == pytest.approx(1 - abs(r), rel=1e-9)
    # Four channels of a 2 x 2 map (3 free columns after centring) are singular: exactly 0.
    four = nn.Sequential(nn.Conv2d(2, 4, 1), nn.Flatten(), nn.Linear(16, 3))
    assert get_proxy("meco")(four, *_batch(3, 2, 2)) == 0.0


def test_zico_matches_gradients_of_each_half_computed_by_hand():
    # One linear layer, cross-entropy: dL/dW = (softmax(W x) - onehot(y))^T x / n on each half of the batch.
    # Over two halves, mean|g| / std(g) = (|g1| + |g2|) / |g1 - g2|; zico = log of its sum over weights.
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    images, labels = _batch(6, 3, 2)
    labels = labels % 3
    w = net[1].weight.detach().double().numpy()
    grads = []
    for part in (slice(0, 3), slice(3, 6)):
        x = images[part].flatten(1).double().numpy()
        logits = x @ w.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(3), labels[part].numpy()] -= 1
        grads.append(p.T @ x / 3)
    g1, g2 = grads
    expected = math.log(np.sum((np.abs(g1) + np.abs(g2)) / np.abs(g1 - g2)))
    assert get_proxy("zico")(net, images, labels) == pytest.approx(expected, rel=1e-5)


def test_params_and_flops_count_the_network():
    net = get_config("nb201_test").build_subnet(get_space("nb201_test").largest())
    images, labels = _batch()
    assert get_proxy("params")(net, images, labels) == sum(p.numel() for p in net.parameters())
    assert get_proxy("flops")(net, images, labels) == count_cost(net, (3, 8, 8)).flops


def test_zen_ignores_image_content_and_follows_the_seed():
    net = get_config("nb201_test").build_subnet(get_space("nb201_test").largest())
    images, labels = _batch()
    zen = get_proxy("zen")
    a = zen(net, images, labels, seed=3)
    assert zen(net, images * 0 + 7, labels, seed=3) == a  # only the batch's shape is used (Gaussian inputs)
    assert zen(net, images, labels, seed=4) != a
    with pytest.raises(ValueError, match="4-D feature map"):
        zen(_mlp(), images[:, :, :2, :2], labels)


# --------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("space_name", ["nb201_test", "mbv3_test", "macro_test", "vit_test"])
def test_every_proxy_is_deterministic_and_leaves_weights_alone(space_name):
    space, config = get_space(space_name), get_config(space_name)
    images, labels = _batch()
    for arch in (space.smallest(), space.largest()):  # e.g. one attention head, a cell without a path
        torch.manual_seed(0)
        net = config.build_subnet(arch)
        net.eval()
        before = _state(net)
        for name in ALL:
            a, b = get_proxy(name)(net, images, labels, seed=1), get_proxy(name)(net, images, labels, seed=1)
            assert a == b or (math.isnan(a) and math.isnan(b)), (arch, name)
            assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), (arch, name)
            assert all(p.grad is None for p in net.parameters()), (arch, name)
            assert not net.training, (arch, name)


def test_proxies_scored_together_equal_each_scored_alone():
    # score_many shares one backward pass between snip, grad_norm and fisher: every value must equal its own
    # call, and the network must come back untouched.
    space, config = get_space("nb201_test"), get_config("nb201_test")
    torch.manual_seed(0)
    net = config.build_subnet(space.largest())
    images, labels = _batch()
    before = _state(net)
    names = ["fisher", "nwot", "snip", "grad_norm", "params"]
    seconds: dict[str, float] = {}
    together = score_many(net, images, labels, names, seed=2, seconds=seconds)
    assert list(together) == names and set(seconds) == set(names)
    for name in names:
        assert together[name] == get_proxy(name)(net, images, labels, seed=2), name
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="needs labels"):
        score_many(net, images, None, ["snip", "fisher"])


def test_bad_batches_give_one_line_errors():
    net = _mlp()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        get_proxy("snip")(net, torch.randn(4, 12), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="needs labels"):
        get_proxy("snip")(net, torch.randn(4, 3, 2, 2), None)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        get_proxy("snip")(net, torch.randn(4, 3, 2, 2), torch.full((4,), 7))
    with pytest.raises(ValueError, match="proxy 'nwot' failed on a batch of shape"):
        get_proxy("nwot")(net, torch.randn(4, 3, 5, 5), None)


# --------------------------------------------------------------------------- table
_CALLS = {"n": 0}


@register_proxy("_test_counter", uses_weights=True)
def _counter(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    _CALLS["n"] += 1
    return float(sum(p.detach().abs().sum() for p in net.parameters()))


def test_table_caches_and_computes_only_what_is_missing(tmp_path):
    space = get_space("nb201_test")
    archs = [space.sample(np.random.default_rng(i)) for i in range(4)]
    batch = ProxyBatch(*_batch())
    path = tmp_path / "proxies.jsonl"
    _CALLS["n"] = 0
    first = score_proxies(space, archs, ["_test_counter", "params"], batch, path)
    assert _CALLS["n"] == len(set(archs))
    again = score_proxies(space, archs, ["_test_counter", "params"], batch, path)
    assert _CALLS["n"] == len(set(archs))  # second call computes nothing
    assert [r["_test_counter@init"] for r in again] == [r["_test_counter@init"] for r in first]
    more = score_proxies(space, archs, ["_test_counter", "nwot"], batch, path)  # only nwot is new
    assert _CALLS["n"] == len(set(archs))
    assert all("nwot@init" in r and r["params"] == first[i]["params"] for i, r in enumerate(more))
    other_seed = score_proxies(space, archs[:1], ["_test_counter"], batch, path, seed=1)
    assert _CALLS["n"] == len(set(archs)) + 1 and other_seed[0]["key"] != first[0]["key"]


def test_params_column_uses_the_cost_model_and_matches_the_network(tmp_path):
    space, config = get_space("nb201_test"), get_config("nb201_test")
    arch = space.largest()
    (rec,) = score_proxies(space, [arch], ["params"], ProxyBatch(*_batch()))
    assert rec["params"] == sum(p.numel() for p in config.build_subnet(arch).parameters())


def test_supernet_weights_give_supernet_columns_and_stay_unchanged():
    supernet = create_supernet("nb201_test")
    before = _state(supernet)
    arch = supernet.space.largest()
    images, labels = _batch()
    (rec,) = score_proxies(supernet.space, [arch], ["synflow", "zen"], ProxyBatch(images, labels), weights=supernet)
    assert set(proxy_columns(["synflow", "zen"], "supernet")) == {"synflow@supernet", "zen"}
    assert rec["synflow@supernet"] == get_proxy("synflow")(extract(supernet, arch), images, labels)
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())


def test_lookup_computes_on_demand_once(tmp_path):
    space = get_space("nb201_test")
    archs = list(dict.fromkeys(space.sample(np.random.default_rng(i)) for i in range(6)))
    batch = ProxyBatch(*_batch())
    lookup = ProxyLookup(space, ["synflow", "params"], batch, tmp_path / "t.jsonl")
    values = lookup(archs)
    assert values.shape == (len(archs), 2) and lookup.computed == len(archs)
    assert np.array_equal(lookup(archs[::-1]), values[::-1]) and lookup.computed == len(archs)
    reopened = ProxyLookup(space, ["synflow", "params"], batch, tmp_path / "t.jsonl")
    assert len(reopened) == len(archs) and np.array_equal(reopened(archs), values) and reopened.computed == 0


def test_cli_scores_a_space_into_a_table(tmp_path, capsys):
    from oneshot.cli import proxies as proxies_cli

    parser = argparse.ArgumentParser()
    proxies_cli.add_arguments(parser)
    table = tmp_path / "p.jsonl"
    args = parser.parse_args([str(table), "--space", "nb201_test", "--data", "digits", "--image-size", "8",
                              "--num-subnets", "3", "--proxies", "synflow,params", "--batch-size", "8",
                              "--no-progress", "--threads", "1"])
    assert proxies_cli.run(args) == 0
    assert "3 subnets of nb201_test" in capsys.readouterr().out
    from oneshot.table import read_table

    _, records = read_table(table)
    assert len(records) == 3 and all("synflow@init" in r for r in records)


# --------------------------------------------------------------------------- zc encoding
class _FakeSource:
    """Proxy values from a dict: arch string -> vector (a stand-in for ProxyLookup)."""

    names = ["a", "b"]

    def __init__(self, values: dict[str, list[float]]) -> None:
        self.values = values

    def __call__(self, archs):
        return np.array([self.values[str(a)] for a in archs], float)


def test_zc_encoding_rank_normalizes_against_its_reference():
    space = get_space("nb201_test")
    archs = list(dict.fromkeys(space.sample(np.random.default_rng(i)) for i in range(5)))[:4]
    values = {str(a): [float(i + 1), 10.0] for i, a in enumerate(archs)}  # column b is constant
    enc = get_encoding("zc", space, proxies=_FakeSource(values))
    x = enc.encode(archs)
    # reference = these four: value i+1 has i below it and one tie (itself): (i + (i + 1)) / 2 / 4
    assert x.shape == (4, 2) and np.allclose(x[:, 0], [(2 * i + 1) / 8 for i in range(4)])
    assert np.allclose(x[:, 1], 0.5)
    values["new"] = [2.5, float("nan")]
    new = enc.normalize(np.array([[2.5, np.nan], [100.0, 10.0]]))
    assert np.allclose(new, [[0.5, 0.0], [1.0, 0.5]])  # between ranks 2 and 3; NaN below all; above all -> 1


def test_zc_combines_with_onehot_and_predictors_save_it(tmp_path):
    space = get_space("nb201_test")
    archs = list(dict.fromkeys(space.sample(np.random.default_rng(i)) for i in range(40)))
    rng = np.random.default_rng(0)
    values = {str(a): [float(rng.normal()), float(rng.normal())] for a in archs}
    source = _FakeSource(values)
    enc = get_encoding("onehot+zc", space, proxies=source)
    assert enc.dim == get_encoding("onehot", space).dim + 2 and enc.name == "onehot+zc"
    y = np.array([values[str(a)][0] for a in archs])  # the target is a proxy: zc alone should rank it well
    model = create_predictor("xgb", space, encoding=enc, n_models=2, n_rounds=30).fit(archs, y)
    path = model.save(tmp_path / "m.predictor")
    loaded = load_predictor(path, proxies=source)
    assert np.allclose(loaded.predict(archs)[0], model.predict(archs)[0])
    with pytest.raises(ValueError, match="zc encoding has no values: give proxies="):
        load_predictor(path).predict(archs)
    with pytest.raises(ValueError, match="unknown encoding argument"):
        get_encoding("onehot", space, proxy=source)
    fitted = fit_predictors(space, archs, y, models=("gp",), folds=2, proxies=source)
    assert fitted["predictors"]["gp"].encoding.name == "onehot+ordinal+zc"
    assert isinstance(fitted["predictors"]["gp"].encoding.parts[-1], ZCEncoding)


def test_undefined_proxies_are_nan_not_errors():
    space = get_space("nb201_test")
    dead = space.make({d.name: "none" for d in space.decisions})  # no path from input to output
    net = get_config("nb201_test").build_subnet(dead)
    images, labels = _batch()
    assert math.isnan(get_proxy("jacov")(net, images, labels))
    assert get_proxy("synflow")(net, images, labels) == 0.0
    (rec,) = score_proxies(space, [dead], ["jacov"], ProxyBatch(images, labels))
    assert rec["jacov@init"] is None  # strict JSON in tables


def test_predictor_search_sampler_runs_on_zc_features_computed_on_demand():
    from oneshot import search

    space = get_space("nb201_test")
    lookup = ProxyLookup(space, ["params", "flops"], ProxyBatch(*_batch(4)))  # cost-model proxies: fast
    encoding = get_encoding("onehot+zc", space, proxies=lookup)
    objective = lambda arch: float(np.log(lookup([arch])[0, 0]))  # noqa: E731 - rank by params
    result = search(space, objective, sampler="predictor", n_trials=8, seed=0, storage="memory", n_startup=4,
                    sampler_args={"predictor": "gp", "n_candidates": 10, "n_mutations": 2, "n_parents": 1,
                                  "predictor_args": {"encoding": encoding, "n_restarts": 0}})
    assert len(result.studies[0].get_trials()) == 8
    assert lookup.computed > 8  # candidates the sampler never evaluated got proxies on demand


def test_proxies_comparing_images_need_two():
    with pytest.raises(ValueError, match="at least 2"):
        get_proxy("jacov")(_mlp(), torch.randn(1, 3, 2, 2), None)
