"""Predictors: conformance of every registered predictor, clear errors on bad input, quality on known functions."""

import numpy as np
import pytest

from predictors import (
    NotFittedError,
    Predictor,
    create_predictor,
    kendall_tau,
    list_predictors,
    load_predictor,
    make_objective,
    score_predictions,
)
from supernets import get_space

PREDICTORS = list_predictors()
SPACES = ["mbv3_test", "nb201_test", "vit_test"]


def _data(space_name, n, kind="pairwise", noise=0.01, seed=0):
    space = get_space(space_name)
    f = make_objective(space, kind, noise, seed=0)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    return space, archs, np.array([f(a) for a in archs])


@pytest.fixture(scope="module", params=[(p, s) for p in PREDICTORS for s in SPACES], ids=lambda x: f"{x[0]}-{x[1]}")
def fitted(request):
    name, space_name = request.param
    space, archs, y = _data(space_name, 60)
    return create_predictor(name, space, seed=1).fit(archs[:40], y[:40]), archs, y


def test_registry_has_the_three_models():
    assert {"xgb", "gp", "auto"} <= set(PREDICTORS)
    with pytest.raises(ValueError, match="unknown predictor 'nope'.*registered"):
        create_predictor("nope", get_space("mbv3_test"))


def test_predict_shapes_and_positive_std(fitted):
    model, archs, y = fitted
    mean, std = model.predict(archs[40:])
    assert mean.shape == std.shape == (20,)
    assert np.isfinite(mean).all() and (std > 0).all()
    assert model.predict([])[0].shape == (0,)
    m_str, _ = model.predict([str(a) for a in archs[40:]])  # arch strings work as well
    np.testing.assert_array_equal(m_str, mean)


def test_save_load_round_trip_gives_same_predictions(fitted, tmp_path):
    model, archs, _ = fitted
    path = model.save(tmp_path / "sub" / "model.predictor")
    assert [p.name for p in path.parent.iterdir()] == ["model.predictor"]  # no temporary file left behind
    for loaded in (load_predictor(path), type(model).load(path)):
        assert type(loaded) is type(model) and loaded.space == model.space
        assert loaded.get_params() == model.get_params()
        # xgboost boosters are stored bit for bit; a GP is refitted from its hyperparameters and training data.
        tol = 0 if model.name == "xgb" else 1e-8
        for a, b in zip(loaded.predict(archs), model.predict(archs)):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol)


def test_same_seed_same_predictions_and_clone_is_unfitted(fitted):
    model, archs, y = fitted
    again = model.clone().fit(archs[:40], y[:40])
    for a, b in zip(again.predict(archs), model.predict(archs)):
        np.testing.assert_array_equal(a, b)
    assert not model.clone().fitted


@pytest.mark.parametrize("name", PREDICTORS)
def test_bad_input_errors_name_the_problem(name, tmp_path):
    space, archs, y = _data("mbv3_test", 20)
    model = create_predictor(name, space)
    with pytest.raises(NotFittedError, match="not fitted.*fit\\(archs, scores\\)"):
        model.predict(archs)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "x")
    with pytest.raises(ValueError, match="empty training set"):
        model.fit([], [])
    with pytest.raises(ValueError, match="all 20 training scores equal"):
        model.fit(archs, np.full(20, 0.5))
    bad = y.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(ValueError, match="2 of 20 scores are NaN.*\\[3, 7\\]"):
        model.fit(archs, bad)
    with pytest.raises(ValueError, match="20 subnets but 19 scores"):
        model.fit(archs, y[:19])
    other = get_space("nb201_test").sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="from space 'nb201_test'.*this predictor is for space 'mbv3_test'"):
        model.fit([*archs[:-1], other], y)
    with pytest.raises(ValueError, match="not in space 'mbv3_test'"):
        model.fit([*map(str, archs[:-1]), "garbage"], y)
    model.fit(archs, y)
    with pytest.raises(ValueError, match="from space 'nb201_test'"):
        model.predict([other])


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_predictor(tmp_path / "missing")
    (tmp_path / "junk").write_text("not a predictor")
    with pytest.raises(ValueError, match="not a readable oneshot predictor file"):
        load_predictor(tmp_path / "junk")
    space, archs, y = _data("mbv3_test", 20)
    path = create_predictor("gp", space).fit(archs, y).save(tmp_path / "gp.predictor")
    with pytest.raises(ValueError, match="holds a GPPredictor, not a XGBPredictor"):
        type(create_predictor("xgb", space)).load(path)
    assert isinstance(Predictor.load(path), Predictor)


def test_bad_hyperparameters_are_refused():
    space = get_space("mbv3_test")
    with pytest.raises(ValueError, match="unknown GP kernel"):
        create_predictor("gp", space, kernel="linear")
    with pytest.raises(ValueError, match="n_models must be at least 2"):
        create_predictor("xgb", space, n_models=1)
    with pytest.raises(ValueError, match="unknown target_transform"):
        create_predictor("xgb", space, target_transform="log")
    with pytest.raises(ValueError, match="unknown auto mode"):
        create_predictor("auto", space, mode="vote")


# --------------------------------------------------------------------------- quality on known functions
# Bounds sit well below what the models reach (benchmarks/bench_predictors.py, averaged over seeds):
# nb201 additive at 100 subnets: xgb 0.88, gp 0.96; nb201 pairwise: ~0.5; mbv3_tiny additive+noise: ~0.7.
@pytest.fixture(scope="module")
def nb201_sets():
    out = {}
    for kind, noise in [("additive", 0.0), ("pairwise", 0.01)]:
        space, archs, y = _data("nb201", 400, kind, noise, seed=5)
        out[kind] = (space, archs, y)
    return out


@pytest.mark.parametrize("name", PREDICTORS)
def test_predictors_beat_chance_with_margin_at_100_subnets(name, nb201_sets):
    bounds = {"additive": 0.7, "pairwise": 0.3}
    for kind, (space, archs, y) in nb201_sets.items():
        model = create_predictor(name, space, seed=0).fit(archs[:100], y[:100])
        mean, _ = model.predict(archs[100:])
        assert kendall_tau(y[100:], mean) > bounds[kind], (name, kind)


def test_gp_std_is_informative_and_calibrated(nb201_sets):
    space, archs, y = nb201_sets["pairwise"]
    model = create_predictor("gp", space, seed=0).fit(archs[:100], y[:100])
    mean, std = model.predict(archs[100:])
    m = score_predictions(y[100:], mean, std)
    assert m["std_error_spearman"] > 0.15  # larger std where errors are larger (measured ~0.4)
    assert 0.8 <= m["coverage"] <= 1.0  # mean +- 2 std holds about 95% (measured ~0.94)
    # Far from the data the GP says it knows less: predicting the training subnets is more certain.
    assert np.median(model.predict(archs[:100])[1]) < np.median(std)


def test_xgb_and_auto_std_cover_held_out_scores(nb201_sets):
    space, archs, y = nb201_sets["pairwise"]
    for name in ["xgb", "auto"]:
        model = create_predictor(name, space, seed=0).fit(archs[:100], y[:100])
        mean, std = model.predict(archs[100:])
        m = score_predictions(y[100:], mean, std)
        assert 0.75 <= m["coverage"] <= 1.0 and m["std_error_spearman"] > 0.05, (name, m)


def test_auto_weight_follows_the_better_model_on_an_additive_function(nb201_sets):
    space, archs, y = nb201_sets["additive"]
    model = create_predictor("auto", space, seed=0).fit(archs[:100], y[:100])
    # The GP is far better on additive functions (0.96 vs 0.88 tau), and its held-out tau says so.
    assert model.held_out_tau_["gp"] > model.held_out_tau_["xgb"]
    assert model.weight_ <= 0.5
    assert set(model.members) == {"xgb", "gp"}


# --------------------------------------------------------------------------- latent units and reused hyperparameters
def test_latent_predictions_map_back_to_score_units(nb201_sets):
    space, archs, y = nb201_sets["pairwise"]
    for transform in ("standard", "rank"):
        model = create_predictor("gp", space, seed=0, target_transform=transform).fit(archs[:60], y[:60])
        mu, sigma = model.predict_latent(archs[60:90])
        mean, _ = model.predict(archs[60:90])
        if transform == "standard":  # latent = (score - mean) / std of the training scores, by hand
            np.testing.assert_allclose(mean, mu * y[:60].std() + y[:60].mean(), rtol=1e-9)
            np.testing.assert_allclose(model.to_latent(y[:3]), (y[:3] - y[:60].mean()) / y[:60].std())
        # Either way the map is increasing, so latent and score units rank alike.
        assert kendall_tau(mu, mean) > 0.999
        order = np.argsort(y[:60])
        assert np.all(np.diff(model.to_latent(y[:60][order])) > 0)
    with pytest.raises(NotFittedError):
        create_predictor("gp", space).predict_latent(archs[:2])


def test_gp_with_given_theta_conditions_without_refitting(nb201_sets):
    space, archs, y = nb201_sets["pairwise"]
    first = create_predictor("gp", space, seed=0).fit(archs[:60], y[:60])
    again = create_predictor("gp", space, seed=3, theta=first.theta_, n_restarts=5).fit(archs[:60], y[:60])
    assert again.theta_ == pytest.approx(first.theta_)  # kept as given, whatever the optimizer settings
    np.testing.assert_allclose(again.predict(archs[60:80])[0], first.predict(archs[60:80])[0], rtol=1e-6)
    more = create_predictor("gp", space, theta=first.theta_).fit(archs[:80], y[:80])
    assert more.theta_ == pytest.approx(first.theta_) and more.n_train_ == 80
    with pytest.raises(ValueError, match="theta must be 3 finite"):
        create_predictor("gp", space, theta=[0.0, 1.0])


def test_gp_prediction_equals_scikit_learns(nb201_sets):
    space, archs, y = nb201_sets["pairwise"]
    model = create_predictor("gp", space, seed=0).fit(archs[:80], y[:80])
    X = model.encoding.encode(archs[80:120])
    mean, std = model._gp.predict(X, return_std=True)  # scikit-learn's own computation
    ours_mean, ours_std = model._predict(X)
    np.testing.assert_allclose(ours_mean, mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours_std, np.maximum(std * model.std_scale_, 1e-6), rtol=1e-6, atol=1e-9)
