"""Predictor files load without running code: JSON + .npy in a zip, pickles and damaged files refused in one line."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from oneshot.score.objectives import resolve_objective
from oneshot.study.search import search
from predictors import create_predictor, load_predictor, make_objective
from predictors.files import write_state_file
from supernets import get_space

SPACE = get_space("mbv3_test")
SMALL = {"xgb": dict(n_models=2, n_rounds=20), "gp": {}, "auto": dict(xgb=dict(n_models=2, n_rounds=20))}


@pytest.fixture(scope="module")
def data():
    f = make_objective(SPACE, "pairwise", 0.01, seed=0)
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(40)]
    return archs, np.array([f(a) for a in archs])


@pytest.fixture(scope="module")
def fitted(data):
    archs, y = data
    return {name: create_predictor(name, SPACE, seed=1, **kw).fit(archs[:30], y[:30]) for name, kw in SMALL.items()}


class _Evil:
    """Unpickling this creates `marker`: what a crafted predictor file would do to whoever loads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_pickle(tmp_path: Path) -> tuple[Path, Path]:
    marker, path = tmp_path / "pwned", tmp_path / "evil.predictor"
    # Shaped like a version-1 (pickled) predictor file, so a loader that peeks at fields would unpickle it first.
    path.write_bytes(pickle.dumps({"format": "oneshot-predictor", "version": 1, "state": _Evil(marker)}, protocol=4))
    return path, marker


def _rewrite(path: Path, out: Path, edit_meta=None, replace: dict[str, bytes] | None = None) -> Path:
    """A copy of the predictor file `path` with its meta.json edited and/or entries replaced."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    if edit_meta is not None:
        meta = json.loads(entries["meta.json"])
        edit_meta(meta)
        entries["meta.json"] = json.dumps(meta).encode()
    entries.update(replace or {})
    with zipfile.ZipFile(out, "w") as z:
        for name, blob in entries.items():
            z.writestr(name, blob)
    return out


@pytest.mark.parametrize("name", list(SMALL))
def test_round_trip_predicts_the_same_and_never_unpickles(name, fitted, data, tmp_path, monkeypatch):
    model, (archs, _) = fitted[name], data
    path = model.save(tmp_path / f"{name}.predictor")
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    with zipfile.ZipFile(path) as z:  # every array entry reads without pickle
        for n in z.namelist():
            if n.endswith(".npy"):
                np.load(io.BytesIO(z.read(n)), allow_pickle=False)

    def no_pickle(*args, **kwargs):
        raise AssertionError("loading a predictor file must not unpickle")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    loaded = load_predictor(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    exact = name == "xgb"  # boosters are stored bit for bit; a GP is refitted with its optimizer off
    for a, b in zip(loaded.predict(archs), model.predict(archs)):
        np.testing.assert_allclose(a, b, rtol=0, atol=0 if exact else 1e-8)
    assert loaded.std_scale_ == model.std_scale_ if name != "auto" else loaded.weight_ == model.weight_
    assert model.save(tmp_path / "again.predictor").read_bytes() == path.read_bytes()  # same predictor, same bytes


def test_gp_reloads_its_fitted_hyperparameters(fitted, data, tmp_path):
    gp = fitted["gp"]
    loaded = load_predictor(gp.save(tmp_path / "gp.predictor"))
    np.testing.assert_array_equal(loaded.kernel_.theta, gp.kernel_.theta)
    assert repr(loaded.kernel_) == repr(gp.kernel_)
    np.testing.assert_array_equal(loaded.held_out_, gp.held_out_)
    member = load_predictor(fitted["auto"].save(tmp_path / "auto.predictor")).members["gp"]
    np.testing.assert_array_equal(member.kernel_.theta, fitted["auto"].members["gp"].kernel_.theta)


def test_a_pickle_with_reduce_is_refused_without_running(tmp_path, data):
    path, marker = _evil_pickle(tmp_path)
    with pytest.raises(ValueError, match=r"not a oneshot predictor file \(pickle files are refused: they can run code"):
        load_predictor(path)
    with pytest.raises(ValueError, match="pickle files are refused"):
        resolve_objective(None, f"predictor:{path}")
    with pytest.raises(ValueError, match="pickle files are refused"):
        search(None, f"predictor:{path}", n_trials=2, sampler="random", storage="memory")
    assert not marker.exists()


def test_an_object_array_inside_the_zip_is_refused_without_running(fitted, tmp_path):
    path = fitted["gp"].save(tmp_path / "gp.predictor")
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    np.save(buf, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as z:
        arrays = [n for n in z.namelist() if n.endswith(".npy")]
    bad = _rewrite(path, tmp_path / "bad.predictor", replace={n: buf.getvalue() for n in arrays})
    with pytest.raises(ValueError, match="not a readable oneshot predictor file.*allow_pickle"):
        load_predictor(bad)
    assert not marker.exists()


def test_damaged_and_foreign_files_give_one_line_errors(fitted, tmp_path):
    path = fitted["xgb"].save(tmp_path / "xgb.predictor")
    blob = path.read_bytes()
    cases = {
        "truncated.predictor": (blob[: len(blob) // 2], "truncated or corrupt"),
        "text.predictor": (b"not a predictor", "not a readable oneshot predictor file \\(not a zip"),
    }
    for name, (content, match) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=match) as err:
            load_predictor(tmp_path / name)
        assert "\n" not in str(err.value)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "a zip of something else")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_predictor(other)

    def set_(key, value):
        return lambda meta: meta.__setitem__(key, value)

    edits = {
        "version": (set_("version", 1), "has predictor file version 1, expected 2"),
        "format": (set_("format", "something-else"), "is not a oneshot predictor file"),
        "fingerprint": (set_("fingerprint", "0" * 16), "records a space that this version of oneshot builds differently"),
        "predictor": (set_("predictor", "nope"), "unknown predictor 'nope'"),
        "unhashable": (set_("predictor", ["xgb"]), "unknown predictor \\['xgb'\\]"),
        "space": (set_("space", {"nope": 1}), "damaged predictor file \\(its space does not parse"),
        "state": (lambda m: m["state"].pop("boosters"), "damaged predictor file \\(KeyError"),
    }
    for name, (edit, match) in edits.items():
        with pytest.raises(ValueError, match=match):
            load_predictor(_rewrite(path, tmp_path / f"{name}.predictor", edit))
    with zipfile.ZipFile(path) as z:
        boosters = [n for n in z.namelist() if n.startswith("blobs/")]
    assert len(boosters) == SMALL["xgb"]["n_models"]
    bad_booster = _rewrite(path, tmp_path / "booster.predictor", replace={n: b"{garbage" for n in boosters})
    with pytest.raises(ValueError, match="saved xgboost booster does not load"):
        load_predictor(bad_booster)


def test_a_file_of_another_space_is_refused_for_a_search_over_this_one(fitted, tmp_path):
    path = fitted["xgb"].save(tmp_path / "xgb.predictor")
    other = get_space("nb201_test")
    with pytest.raises(ValueError, match="predictor file is for space 'mbv3_test'.*not 'nb201_test'"):
        resolve_objective(other, f"predictor:{path}")


def test_a_gp_file_whose_kernel_does_not_match_is_refused(fitted, tmp_path):
    path = fitted["gp"].save(tmp_path / "gp.predictor")
    with pytest.raises(ValueError, match="saved GP kernel .* is not the 'matern' kernel"):
        load_predictor(_rewrite(path, tmp_path / "k.predictor", lambda m: m["params"].__setitem__("kernel", "matern")))


def test_writing_refuses_objects_that_would_need_pickle(tmp_path):
    with pytest.raises(TypeError, match="predictor state .x is a _Evil: only JSON values"):
        write_state_file(tmp_path / "x", {"x": _Evil(tmp_path / "m")})
    with pytest.raises(TypeError, match="array of object"):
        write_state_file(tmp_path / "x", {"x": np.array([None], dtype=object)})
    assert not os.listdir(tmp_path)
