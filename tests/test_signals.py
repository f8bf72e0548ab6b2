"""Per-subnet signals as predictor columns: one rank-normalized encoding for supernet scores, proxies and costs."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from predictors import create_predictor, get_encoding, kendall_tau, load_predictor, make_objective
from predictors.encodings import SignalEncoding, Signals, ZCEncoding, cost_signals
from predictors.files import read_state_file
from predictors.stacking import proxy_groups
from supernets import get_space

SPACE = "nb201_test"


def _archs(space, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return list(dict.fromkeys(space.sample(rng) for _ in range(3 * n)))[:n]


def _hash_normal(text: str) -> float:
    """A fixed standard-normal draw per string: a value with no structure in the encoding."""
    h = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
    return float(np.random.default_rng(h).normal())


def test_signals_reads_functions_mappings_and_other_sources_in_order():
    space = get_space(SPACE)
    a, b, c = _archs(space, 3)

    class Lookup:  # a stand-in for oneshot's ProxyLookup
        names = ["p"]

        def __call__(self, archs):
            return np.array([[len(str(x))] for x in archs], float)

    calls = []

    def acc(arch):
        calls.append(str(arch))
        return {str(a): 0.5, str(b): 0.7}.get(str(arch))  # None for c: not measured

    src = Signals({"acc": acc, "table": {str(a): 1.0, str(c): 3.0}}, sources=[Lookup()])
    assert src.names == ["p", "acc", "table"]
    out = src([a, b, c, a])
    assert out.shape == (4, 3)
    assert out[0].tolist() == [len(str(a)), 0.5, 1.0] and out[3].tolist() == out[0].tolist()
    assert out[1, 1] == 0.7 and math.isnan(out[1, 2]) and math.isnan(out[2, 1]) and out[2, 2] == 3.0
    assert calls == [str(a), str(b), str(c)]  # each subnet's signal computed once, then cached
    src([b])
    assert len(calls) == 3


@pytest.mark.parametrize("bad, message", [
    (dict(columns={"p": lambda a: 1.0}, sources=[type("S", (), {"names": ["p"], "__call__": None})()]),
     "given twice"),
    (dict(columns={}), "at least one"),
    (dict(columns={"x": 3.0}), "function arch -> float or a mapping"),
])
def test_signals_refuse_bad_columns_in_one_line(bad, message):
    with pytest.raises((ValueError, TypeError), match=message) as err:
        Signals(**bad)
    assert "\n" not in str(err.value)


def test_signal_encoding_ranks_like_zc_and_puts_nan_below_everything():
    space = get_space(SPACE)
    archs = _archs(space, 6)
    raw = {str(a): [float(v), -float(v) * 1e20] for v, a in enumerate(archs)}
    raw[str(archs[2])][0] = float("nan")

    class Src:
        names = ["s", "t"]

        def __call__(self, xs):
            return np.array([raw[str(x)] for x in xs])

    sig = get_encoding("signals", space, signals=Src())
    zc = get_encoding("zc", space, proxies=Src())
    assert isinstance(sig, SignalEncoding) and isinstance(zc, ZCEncoding) and isinstance(zc, SignalEncoding)
    x_sig, x_zc = sig.encode(archs), zc.encode(archs)
    assert np.array_equal(x_sig, x_zc) and sig.reference_size == 6
    assert x_sig[2, 0] == 0.0  # NaN: below everything
    assert np.all(np.diff(np.delete(x_sig[:, 0], 2)) > 0) and np.all(np.diff(x_sig[:, 1]) < 0)  # order kept
    assert x_sig.min() >= 0 and x_sig.max() <= 1


def test_signal_encoding_without_values_says_which_argument_is_missing():
    space = get_space(SPACE)
    enc = get_encoding("signals", space)
    with pytest.raises(ValueError, match="signals=") as err:
        enc.encode(_archs(space, 3))
    assert "\n" not in str(err.value)


def test_reference_from_the_source_gives_fine_ranks_between_training_subnets():
    """A broad reference keeps held-out subnets apart; the training set alone as reference would tie them."""
    space = get_space(SPACE)
    archs = _archs(space, 60)
    values = {str(a): _hash_normal(str(a)) for a in archs}
    src = Signals({"v": values}, reference=archs)
    enc = get_encoding("signals", space, signals=src)
    x = enc.encode(archs[50:])  # the reference is all 60, not these 10
    assert enc.reference_size == 60 and len(np.unique(x[:, 0])) == 10
    assert kendall_tau([values[str(a)] for a in archs[50:]], x[:, 0]) == pytest.approx(1.0)


def test_cost_signals_are_the_analytic_costs():
    from supernets.cost import cost

    space = get_space("macro_test")
    cols = cost_signals(space)
    a = space.largest()
    assert cols["macs"](a) == cost(a).macs and cols["params"](a) == cost(a).params


def test_zc_and_signals_parts_form_one_stacked_group():
    space = get_space(SPACE)
    p = Signals({"p": lambda a: 1.0})
    q = Signals({"acc": lambda a: 2.0, "loss": lambda a: 3.0})
    enc = get_encoding("onehot+zc+signals", space, proxies=p, signals=q)
    other, other_cols, group, cols = proxy_groups(enc)
    assert other.name == "onehot" and len(cols) == 3 and group.name == "zc+signals"
    assert [enc.feature_names[j] for j in cols] == ["zc:p", "signals:acc", "signals:loss"]
    assert proxy_groups(get_encoding("signals", space, signals=q)) is None


def _fit_pair(space, archs, y, values, n_train, seed):
    """(tau of the onehot+signals stack, tau of one-hot alone, stack weights) on held-out subnets."""
    src = Signals({name: {k: v[j] for k, v in values.items()} for j, name in enumerate(["s"])}, reference=archs)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(archs))
    train, test = order[:n_train], order[n_train:]
    pick = lambda idx: [archs[i] for i in idx]  # noqa: E731
    stack = create_predictor("gp", space, encoding=get_encoding("onehot+signals", space, signals=src),
                             seed=seed).fit(pick(train), y[train])
    onehot = create_predictor("gp", space, encoding="onehot", seed=seed).fit(pick(train), y[train])
    return (kendall_tau(y[test], stack.predict(pick(test))[0]), kendall_tau(y[test], onehot.predict(pick(test))[0]),
            stack.weights_)


def test_a_useless_signal_is_weighed_out_paired_over_seeds():
    """The truth is additive in the encoding and the signal is noise: over paired seeds the stack must not be
    worse than one-hot alone (mean difference within two standard errors of zero, or positive), and the members
    that see the encoding must carry it."""
    space = get_space(SPACE)
    archs = _archs(space, 300, seed=1)
    f = make_objective(space, "additive", seed=3)
    y = np.array([f(a) for a in archs])
    values = {str(a): [_hash_normal(f"noise{a}")] for a in archs}
    diffs, enc_weight = [], []
    for seed in range(6):
        t_stack, t_onehot, w = _fit_pair(space, archs, y, values, 60, seed)
        diffs.append(t_stack - t_onehot)
        enc_weight.append(w["onehot"] + w["onehot+signals"])
    diffs = np.array(diffs)
    se = diffs.std(ddof=1) / math.sqrt(len(diffs))
    assert diffs.mean() >= -max(2 * se, 0.01), (diffs, se)
    assert np.mean(enc_weight) > 0.8, enc_weight


def test_a_signal_equal_to_the_truth_dominates():
    space = get_space(SPACE)
    archs = _archs(space, 300, seed=2)
    values = {str(a): [_hash_normal(f"truth{a}")] for a in archs}
    y = np.array([values[str(a)][0] for a in archs])  # no structure in the encoding: only the signal knows it
    for seed in range(3):
        t_stack, t_onehot, w = _fit_pair(space, archs, y, values, 30, seed)
        assert w["signals"] + w["signals:s"] > 0.9, w
        assert t_stack > 0.95 and t_stack > t_onehot + 0.3


def test_a_predictor_on_signals_saves_and_loads_without_pickle(tmp_path):
    space = get_space(SPACE)
    archs = _archs(space, 40, seed=5)
    values = {str(a): _hash_normal(f"v{a}") for a in archs}
    src = Signals({"v": values, "w": lambda a: len(str(a))}, reference=archs)
    model = create_predictor("gp", space, encoding=get_encoding("onehot+signals", space, signals=src)).fit(
        archs[:30], [values[str(a)] for a in archs[:30]])
    path = model.save(tmp_path / "p.predictor")
    meta = read_state_file(path)
    assert meta["encoding_state"]["signals"]["names"] == ["v", "w"]
    again = load_predictor(path, signals=src)
    assert np.allclose(again.predict(archs[30:])[0], model.predict(archs[30:])[0])
    with pytest.raises(ValueError, match="used") as err:  # a source with other signals cannot stand in
        load_predictor(path, signals=Signals({"other": values, "w": lambda a: 1.0}))
    assert "\n" not in str(err.value)
