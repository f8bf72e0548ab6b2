"""Predictors with zero-cost proxies: GP and XGBoost stacks of per-group models and the best proxy (stacking.py)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from predictors import (
    GPPredictor, create_predictor, fit_predictors, get_encoding, kendall_tau, load_predictor, make_objective,
)
from predictors.files import read_state_file, write_state_file
from predictors.stacking import mixture, proxy_groups
from supernets import get_space

SPACE = "nb201_test"


class _Source:
    """Proxy values from a dict (arch string -> vector): a stand-in for oneshot's ProxyLookup."""

    def __init__(self, names: list[str], values: dict[str, list[float]]) -> None:
        self.names, self.values = names, values

    def __call__(self, archs):
        return np.array([self.values[str(a)] for a in archs], float)


def _archs(space, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return list(dict.fromkeys(space.sample(rng) for _ in range(3 * n)))[:n]


def _hash_normal(text: str) -> float:
    """A fixed standard-normal draw per string: a score with no structure in the encoding."""
    h = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
    return float(np.random.default_rng(h).normal())


def _tau_null_se(m: int) -> float:
    """Standard error of Kendall tau between two independent rankings of m items (Kendall 1938)."""
    return math.sqrt(2 * (2 * m + 5) / (9 * m * (m - 1)))


def test_proxy_groups_split_columns_by_part():
    space = get_space(SPACE)
    source = _Source(["p", "q"], {})
    for name in ("onehot+zc", "zc+onehot+ordinal", "onehot+ordinal+zc"):
        enc = get_encoding(name, space, proxies=source)
        other, other_cols, zc, zc_cols = proxy_groups(enc)
        assert zc.name == "zc" and len(zc_cols) == 2 and other.dim == len(other_cols) == enc.dim - 2
        assert sorted([*other_cols, *zc_cols]) == list(range(enc.dim))
        assert [enc.feature_names[j] for j in zc_cols] == ["zc:p", "zc:q"]
        assert [enc.feature_names[j] for j in other_cols] == [f"{p.name}:{f}" for p in enc.parts if p.name != "zc"
                                                             for f in p.feature_names]
    assert proxy_groups(get_encoding("onehot+ordinal", space)) is None
    assert proxy_groups(get_encoding("zc", space, proxies=source)) is None


def test_mixture_of_two_gaussians_matches_the_closed_form():
    m = np.array([[0.0, 2.0], [1.0, 1.0]])
    s = np.array([[1.0, 0.5], [0.3, 0.4]])
    w = np.array([0.25, 0.75])
    mean, std = mixture(m, s, w)
    # two components: var = w1 s1^2 + w2 s2^2 + w1 w2 (m1 - m2)^2
    expect = w[0] * s[:, 0] ** 2 + w[1] * s[:, 1] ** 2 + w[0] * w[1] * (m[:, 0] - m[:, 1]) ** 2
    assert np.allclose(mean, [1.5, 1.0]) and np.allclose(std**2, expect)


def test_stack_gives_an_informative_proxy_group_the_weight():
    """Scores are a proxy with no structure in the encoding: the stack must lean on the proxies and rank the
    held-out subnets far better than the one-hot GP, which cannot learn a structureless function from 60."""
    space = get_space(SPACE)
    archs = _archs(space, 300)
    values = {str(a): [_hash_normal(f"p{a}"), _hash_normal(f"q{a}")] for a in archs}  # p = score, q = noise
    source = _Source(["p", "q"], values)
    y = np.array([values[str(a)][0] for a in archs])
    train, test = archs[:60], archs[60:]
    stack = create_predictor("gp", space, encoding=get_encoding("onehot+zc", space, proxies=source)).fit(
        train, y[:60])
    onehot = create_predictor("gp", space, encoding="onehot").fit(train, y[:60])
    weights = stack.weights_
    assert list(weights) == ["onehot", "onehot+zc", "zc", "zc:p"] and math.isclose(sum(weights.values()), 1.0)
    assert weights["zc"] + weights["zc:p"] > 0.9  # the members that see only proxies
    tau_stack = kendall_tau(y[60:], stack.predict(test)[0])
    tau_onehot = kendall_tau(y[60:], onehot.predict(test)[0])
    assert tau_stack > 0.9 and tau_stack > tau_onehot + 4 * _tau_null_se(len(test))


def test_stack_with_uninformative_proxies_does_no_worse_than_onehot():
    """Scores are additive in the encoding and the proxies are noise: the encoding GP must carry the stack,
    within two null standard errors of Kendall tau on the test set of the one-hot GP alone."""
    space = get_space(SPACE)
    archs = _archs(space, 400, seed=1)
    f = make_objective(space, "additive", seed=3)
    y = np.array([f(a) for a in archs])
    values = {str(a): [_hash_normal(f"u{a}"), _hash_normal(f"v{a}")] for a in archs}
    source = _Source(["u", "v"], values)
    train, test = archs[:80], archs[80:]
    stack = create_predictor("gp", space, encoding=get_encoding("onehot+zc", space, proxies=source)).fit(
        train, y[:80])
    onehot = create_predictor("gp", space, encoding="onehot").fit(train, y[:80])
    assert stack.weights_["onehot"] + stack.weights_["onehot+zc"] > 0.8  # the members that see the encoding
    tau_stack = kendall_tau(y[80:], stack.predict(test)[0])
    tau_onehot = kendall_tau(y[80:], onehot.predict(test)[0])
    assert tau_stack >= tau_onehot - 2 * _tau_null_se(len(test))


def test_a_proxy_that_ranks_backwards_is_turned_around():
    space = get_space(SPACE)
    archs = _archs(space, 120, seed=2)
    values = {str(a): [-_hash_normal(f"s{a}"), _hash_normal(f"n{a}")] for a in archs}
    source = _Source(["minus", "noise"], values)
    y = np.array([-values[str(a)][0] for a in archs])  # the score is minus the first proxy
    model = create_predictor("gp", space, encoding=get_encoding("onehot+zc", space, proxies=source)).fit(
        archs[:50], y[:50])
    assert model.stack_.sign == -1.0 and model.stack_.names[-1] == "zc:minus"
    assert kendall_tau(y[50:], model.predict(archs[50:])[0]) > 0.8


def test_stack_saves_loads_and_reuses_its_hyperparameters(tmp_path):
    space = get_space(SPACE)
    archs = _archs(space, 80, seed=4)
    f = make_objective(space, "pairwise", seed=0)
    values = {str(a): [f(a) + 0.05 * _hash_normal(str(a)), _hash_normal(f"w{a}")] for a in archs}
    source = _Source(["near", "noise"], values)
    enc = get_encoding("onehot+ordinal+zc", space, proxies=source)
    y = np.array([f(a) for a in archs])
    model = create_predictor("gp", space, encoding=enc, seed=1).fit(archs[:50], y[:50])
    assert model.get_params()["proxies"] == "stack" and len(model.theta_) == 9  # three (amplitude, length, noise)
    loaded = load_predictor(model.save(tmp_path / "s.predictor"), proxies=source)
    assert isinstance(loaded, GPPredictor) and loaded.weights_ == model.weights_
    for a, b in zip(loaded.predict(archs[50:]), model.predict(archs[50:])):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(loaded.held_out_, model.held_out_)
    again = create_predictor("gp", space, encoding=enc, seed=1, theta=model.theta_).fit(archs[:50], y[:50])
    np.testing.assert_allclose(again.predict(archs[50:])[0], model.predict(archs[50:])[0], rtol=1e-6)
    with pytest.raises(ValueError, match="this GP stacks"):
        model.kernel_
    with pytest.raises(ValueError, match="theta must be 9"):
        create_predictor("gp", space, encoding=enc, theta=model.theta_[:3])
    with pytest.raises(ValueError, match="unknown GP proxies mode"):
        create_predictor("gp", space, encoding=enc, proxies="sum")


def test_joint_mode_and_files_saved_before_stacking_are_one_kernel(tmp_path):
    space = get_space(SPACE)
    archs = _archs(space, 40, seed=5)
    values = {str(a): [_hash_normal(f"j{a}")] for a in archs}
    source = _Source(["j"], values)
    enc = get_encoding("onehot+zc", space, proxies=source)
    y = np.array([values[str(a)][0] + 0.1 * _hash_normal(str(a)) for a in archs])
    joint = create_predictor("gp", space, encoding=enc, proxies="joint").fit(archs, y)
    assert joint.stack_ is None and joint.kernel_ is not None and joint.weights_ == {"onehot+zc": 1.0}
    path = joint.save(tmp_path / "joint.predictor")
    # A file written before the `proxies` option: no such parameter, and a one-kernel state.
    payload = read_state_file(path)
    del payload["params"]["proxies"]
    old = write_state_file(tmp_path / "old.predictor", payload)
    loaded = load_predictor(old, proxies=source)
    assert loaded.stack_ is None and loaded.get_params()["proxies"] == "joint"
    np.testing.assert_allclose(loaded.predict(archs)[0], joint.predict(archs)[0], rtol=1e-9)


# ---------------------------------------------------------------- XGBoost: the same stack, out-of-fold members


def _xgb_setup(n: int = 200, seed: int = 6):
    """Scores with no structure in the encoding, a proxy `p` = score + small noise and a pure-noise proxy `q`."""
    space = get_space(SPACE)
    archs = _archs(space, n, seed=seed)
    y = np.array([_hash_normal(f"y{a}") for a in archs])
    values = {str(a): [float(t) + 0.2 * _hash_normal(f"e{a}"), _hash_normal(f"q{a}")] for a, t in zip(archs, y)}
    source = _Source(["p", "q"], values)
    return space, archs, y, source, get_encoding("onehot+zc", space, proxies=source)


def test_xgb_stack_leans_on_an_informative_proxy_and_beats_plain_xgb():
    space, archs, y, source, enc = _xgb_setup()
    train, test = archs[:60], archs[60:]
    stack = create_predictor("xgb", space, encoding=enc).fit(train, y[:60])
    onehot = create_predictor("xgb", space, encoding="onehot").fit(train, y[:60])
    weights = stack.weights_
    assert list(weights) == ["onehot", "onehot+zc", "zc:p"]  # no ensemble on the proxies alone (xgb.stack_keys)
    assert all(w >= 0 for w in weights.values()) and math.isclose(sum(weights.values()), 1.0)
    assert weights["zc:p"] > 0.5 and weights["onehot"] < 0.1
    tau_stack = kendall_tau(y[60:], stack.predict(test)[0])
    tau_onehot = kendall_tau(y[60:], onehot.predict(test)[0])
    assert tau_stack > 0.8 and tau_stack > tau_onehot + 4 * _tau_null_se(len(test))
    # the members are the plain ensembles: the encoding member is XGBoost on onehot with the same seed and folds
    np.testing.assert_array_equal(stack.members_["encoding"]._predict(onehot.encoding.encode(test))[0],
                                  onehot.predict_latent(test)[0])
    # every training subnet has an out-of-fold prediction from each member (K folds with K = n_models)
    assert all(np.isfinite(m.held_out_).all() for m in stack.members_.values())


def test_xgb_stack_std_is_that_of_the_mixture():
    space, archs, y, source, enc = _xgb_setup(80, seed=7)
    model = create_predictor("xgb", space, encoding=enc, seed=2).fit(archs[:50], y[:50])
    X = enc.encode(archs[50:])
    means, stds = [], []
    for key, m in model.members_.items():
        mu, sd = m._predict(X[:, model.stack_.cols[key]])
        means.append(mu), stds.append(sd)
    means.append(model.stack_._single(X)), stds.append(np.full(len(X), model.stack_.proxy_std))
    w = np.array(list(model.weights_.values()))
    mean = sum(wk * mk for wk, mk in zip(w, means))
    second = sum(wk * (sk**2 + mk**2) for wk, mk, sk in zip(w, means, stds))  # E[x^2] of the mixture
    mu, sd = model.predict_latent(archs[50:])
    np.testing.assert_allclose(mu, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sd, np.sqrt(second - mean**2), rtol=1e-6, atol=1e-9)


def test_xgb_stack_is_deterministic_and_saves_and_loads(tmp_path):
    space, archs, y, source, enc = _xgb_setup(70, seed=8)
    a = create_predictor("xgb", space, encoding=enc, seed=3).fit(archs[:50], y[:50])
    b = create_predictor("xgb", space, encoding=enc, seed=3).fit(archs[:50], y[:50])
    assert a.get_params()["proxies"] == "stack" and a.weights_ == b.weights_
    np.testing.assert_array_equal(a.predict(archs[50:])[0], b.predict(archs[50:])[0])
    path = a.save(tmp_path / "x.predictor")
    assert "stack" in read_state_file(path)["state"]
    loaded = load_predictor(path, proxies=source)
    assert loaded.weights_ == a.weights_ and loaded.stack_.proxy == a.stack_.proxy
    for got, want in zip(loaded.predict(archs[50:]), a.predict(archs[50:])):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.held_out_, a.held_out_)


def test_xgb_joint_is_one_ensemble_and_old_files_load_as_joint(tmp_path):
    space, archs, y, source, enc = _xgb_setup(60, seed=9)
    joint = create_predictor("xgb", space, encoding=enc, seed=4, proxies="joint").fit(archs[:40], y[:40])
    assert joint.stack_ is None and joint.weights_ == {"onehot+zc": 1.0}
    # one ensemble over all columns: the same as the stack's member on all columns (same seed, folds, columns)
    stack = create_predictor("xgb", space, encoding=enc, seed=4).fit(archs[:40], y[:40])
    np.testing.assert_array_equal(joint.predict_latent(archs[40:])[0],
                                  stack.members_["joint"]._predict(enc.encode(archs[40:]))[0])
    payload = read_state_file(joint.save(tmp_path / "joint.predictor"))
    del payload["params"]["proxies"]  # a file written before the `proxies` option
    loaded = load_predictor(write_state_file(tmp_path / "old.predictor", payload), proxies=source)
    assert loaded.stack_ is None and loaded.get_params()["proxies"] == "joint"
    np.testing.assert_array_equal(loaded.predict(archs[40:])[0], joint.predict(archs[40:])[0])


def test_xgb_stack_refuses_what_it_cannot_weigh_and_falls_back_without_folds():
    space, archs, y, source, enc = _xgb_setup(30, seed=10)
    with pytest.raises(ValueError, match="resample='none'"):
        create_predictor("xgb", space, encoding=enc, resample="none")
    with pytest.raises(ValueError, match="unknown XGB proxies mode"):
        create_predictor("xgb", space, encoding=enc, proxies="sum")
    create_predictor("xgb", space, encoding="onehot", resample="none")  # nothing to stack: fine
    # 6 subnets for 8 folds: no out-of-fold predictions, so no evidence for a weight; the best proxy alone (chosen
    # and oriented by the 6 scores: an encoding model of 6 subnets knows next to nothing)
    tiny = create_predictor("xgb", space, encoding=enc, n_rounds=20).fit(archs[:6], y[:6])
    best = tiny.stack_.names[-1]
    assert tiny.weights_[best] == 1.0 and math.isclose(sum(tiny.weights_.values()), 1.0)
    flat = create_predictor("xgb", space, encoding=get_encoding("onehot+zc", space, proxies=_Source(
        ["c"], {str(a): [1.0] for a in archs})), n_rounds=20).fit(archs[:6], y[:6])
    assert flat.weights_["onehot"] == 1.0  # a proxy that cannot rank them: the encoding member alone


def test_fit_predictors_with_proxies_stacks_both_models():
    space, archs, y, source, enc = _xgb_setup(40, seed=11)
    fitted = fit_predictors(space, archs, y, models=("xgb", "gp"), folds=0, proxies=source,
                            options={"xgb": {"n_rounds": 50}})
    for name in ("xgb", "gp"):
        assert fitted["predictors"][name].stack_ is not None
        assert fitted["predictors"][name].encoding.name == "onehot+ordinal+zc"
