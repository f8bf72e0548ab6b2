"""Recipes that name the user's own code (issue 24 §4): `class_path` + `init_args` for the supernet and the data,
checkpoints that rebuild both from the recorded paths, and `oneshot.spaces` / `oneshot.datasets` entry points.

Every test writes a tiny user package into tmp_path (a residual CNN built from the elastic blocks, a map-style
dataset of scikit-learn's digits at 8 px, and a LightningDataModule over it) and puts it on sys.path or PYTHONPATH,
as a user working in their own folder would (`PYTHONPATH=.`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from oneshot.data import datamodule_from_info, datamodule_from_section
from oneshot.data.user import UserDataModule
from oneshot.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parent.parent

DATA_PY = '''
import os
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset, random_split

if os.environ.get("USERPKG_MARKER"):  # tests check when (and whether) this module is imported
    Path(os.environ["USERPKG_MARKER"]).write_text("imported")


class Digits(Dataset):
    """scikit-learn's digits as (image (1, size, size) in [0, 1], label): a plain map-style dataset."""

    classes = [f"digit {i}" for i in range(10)]

    def __init__(self, size: int = 8, limit: int | None = None, transform=None):
        d = load_digits()
        self.transform = transform
        x = torch.tensor(d.images[:limit], dtype=torch.float32).unsqueeze(1) / 16
        hw = tuple(size) if isinstance(size, (list, tuple)) else (size, size)  # (H, W) pixels
        self.x = F.interpolate(x, size=hw, mode="bilinear") if hw != (8, 8) else x
        self.y = d.target[:limit].tolist()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return (self.transform or (lambda x: x))(self.x[i]), self.y[i]


class Scale:
    """A transform, built from the recipe by a nested class_path."""

    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self, x):
        return x * self.factor


class DigitsDM(L.LightningDataModule):
    """A plain LightningDataModule with its own train / val / test splits."""

    def __init__(self, size: int = 8, batch_size: int = 16):
        super().__init__()
        self.size, self.batch_size = size, batch_size
        self.num_classes = 10

    def setup(self, stage=None):
        if not hasattr(self, "train"):
            parts = random_split(Digits(self.size), [0.6, 0.2, 0.2], generator=torch.Generator().manual_seed(0))
            self.train, self.val, self.test = parts

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)


class NoTest(DigitsDM):
    test_dataloader = L.LightningDataModule.test_dataloader


class Arrays(Digits):
    def __getitem__(self, i):
        return self.x[i].numpy(), self.y[i]


class Bytes(Digits):
    def __getitem__(self, i):
        return (self.x[i] * 255).to(torch.uint8), self.y[i]


class NotData:
    pass
'''

MODELS_PY = '''
from torch import nn

from supernets import ElasticBatchNorm2d, ElasticConv2d, ElasticDepth, ElasticLinear, Value


class Res(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.conv = ElasticConv2d(w, w, (3, 5))
        self.bn = ElasticBatchNorm2d(w)

    def forward(self, x):
        return x + self.bn(self.conv(x)).relu()


class Net(nn.Module):
    """A small residual CNN supernet: width, per-block kernel and depth are searched."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths: tuple = (4, 8)):
        super().__init__()
        w = Value(tuple(widths), name="width")
        self.stem = nn.Sequential(ElasticConv2d(in_chans, w, 3), ElasticBatchNorm2d(w), nn.ReLU())
        self.blocks = ElasticDepth([Res(w) for _ in range(2)], depths=(1, 2))
        self.head = ElasticLinear(w, num_classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class Plain:
    pass
'''


@pytest.fixture
def user_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh user package (a unique name, so imports never leak between tests) on sys.path; returns its name."""
    name = f"userpkg_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "src"
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "data.py").write_text(DATA_PY)
    (root / name / "models.py").write_text(MODELS_PY + MORE_MODELS_PY)
    monkeypatch.syspath_prepend(str(root))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def _ids(ds) -> list[int]:
    """Which digits images a split holds, told apart by their pixels (the splits index different datasets)."""
    from sklearn.datasets import load_digits

    pool = {tuple(x.ravel()): i for i, x in enumerate(load_digits().images / 16)}
    return sorted(pool[tuple(np.round(ds[i][0].numpy().ravel().astype(np.float64), 6))]
                  for i in range(len(ds)))


# --------------------------------------------------------------------------- data: a map-style dataset
def test_dataset_is_split_three_ways_stratified_and_rebuilt_from_info(user_pkg: str) -> None:
    dm = UserDataModule(f"{user_pkg}.data.Digits", {"size": 8}, holdout_fraction=0.25, test_fraction=0.2)
    dm.setup()
    s = dm.split_indices
    train, holdout, test = (set(s[k].tolist()) for k in ("train", "holdout", "test"))
    assert not (train & holdout or train & test or holdout & test) and len(train | holdout | test) == 1797
    assert abs(len(test) - 0.2 * 1797) < 10 and abs(len(holdout) - 0.25 * 0.8 * 1797) < 10
    labels = np.asarray(dm._user.y)
    for idx in s.values():  # stratified as the shipped datasets are
        assert np.allclose(np.bincount(labels[idx], minlength=10) / len(idx), np.bincount(labels) / 1797, atol=0.02)
    assert dm.kind == "dataset" and dm.input_shape == (1, 8, 8) and dm.in_chans == 1
    assert dm.num_classes == 10 and dm.classes[3] == "digit 3"  # the dataset's `classes`
    x, y = dm.train_set[0]
    assert torch.equal(x, dm._user.x[s["train"][0]])  # images as the dataset returns them (no normalization asked)
    assert int(y) == labels[s["train"][0]] and torch.equal(dm.train_set.labels, torch.from_numpy(labels[s["train"]]))
    info = dm.info()
    assert info["class_path"] == f"{user_pkg}.data.Digits" and info["init_args"] == {"size": 8}
    assert json.loads(json.dumps(info)) == info  # plain data: a checkpoint stores it
    again = datamodule_from_info(info)
    again.setup()
    assert again.info() == info and all(np.array_equal(again.split_indices[k], s[k]) for k in s)


def test_dataset_normalized_and_capped_as_the_recipe_asks(user_pkg: str) -> None:
    dm = UserDataModule(f"{user_pkg}.data.Digits", {"size": 12}, mean=[0.5], std=[0.25], max_train_samples=50,
                          batch_size=25)
    dm.setup()
    i = dm.split_indices["train"][0]
    assert torch.allclose(dm.train_set[0][0], (dm._user.x[i] - 0.5) / 0.25)
    assert len(dm.train_set) == 50 and np.bincount(dm.train_set.labels.numpy()).min() == 5  # class-balanced cap
    assert dm.input_shape == (1, 12, 12) and dm.image_size == 12 and dm.crop_padding == 12 // 8
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (dm.batch_size, 1, 12, 12) and y.dtype == torch.int64


def test_nested_class_paths_in_init_args_are_built_first(user_pkg: str) -> None:
    """As in Lightning's CLI: a transform (here inside torchvision's Compose) named in the data's init_args."""
    scale = {"class_path": f"{user_pkg}.data.Scale", "init_args": {"factor": 2.0}}
    init_args = {"transform": {"class_path": "torchvision.transforms.Compose", "init_args": {"transforms": [scale]}}}
    dm = UserDataModule(f"{user_pkg}.data.Digits", init_args)
    dm.setup()
    i = dm.split_indices["train"][0]
    assert torch.equal(dm.train_set[0][0], 2.0 * dm._user.x[i])
    assert dm.info()["init_args"] == init_args  # recorded as written: a checkpoint rebuilds the same objects
    bad = UserDataModule(f"{user_pkg}.data.Digits", {"transform": {"class_path": f"{user_pkg}.data.Scale",
                                                                   "init_args": {"factr": 2}}})
    with pytest.raises(ValueError, match=rf"init_args \['factr'\] do not fit {user_pkg}.data.Scale\(factor: float\)"):
        bad.setup()


# --------------------------------------------------------------------------- data: a LightningDataModule
def test_lightning_datamodule_keeps_its_own_splits(user_pkg: str) -> None:
    dm = UserDataModule(f"{user_pkg}.data.DigitsDM", {"batch_size": 7}, batch_size=20, max_eval_samples=100)
    dm.setup()
    user = dm._user
    assert dm.kind == "datamodule" and dm.num_classes == 10 and dm.input_shape == (1, 8, 8)
    assert dm.classes[3] == "digit 3"  # names from the dataset behind random_split's Subset
    assert _ids(dm.train_set) == _ids(user.train)  # the module's own train split, whole
    assert set(_ids(dm.holdout_set)) <= set(_ids(user.val)) and len(dm.holdout_set) == 100  # capped, balanced
    assert set(_ids(dm.test_set)) <= set(_ids(user.test))
    assert not set(_ids(dm.train_set)) & set(_ids(dm.holdout_set))
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape[0] == 20  # oneshot's loaders: the recipe's batch size, not the module's 7
    info = dm.info()
    again = datamodule_from_info(info)
    again.setup()
    assert again.info() == info and _ids(again.holdout_set) == _ids(dm.holdout_set)


# --------------------------------------------------------------------------- data: bad input, one line each
@pytest.mark.parametrize("path, message", [
    ("{pkg}.nothere.Digits", r"data.class_path '{pkg}.nothere.Digits' does not import: ModuleNotFoundError"),
    ("{pkg}.data.Nope", r"'{pkg}.data.Nope' does not import: module '{pkg}.data' has no 'Nope'"),
    ("{pkg}.data.NotData", r"'{pkg}.data.NotData' is neither a LightningDataModule nor a map-style dataset"),
    ("{pkg}.data.Arrays", r"{pkg}.data.Arrays: images must be tensors \(C, H, W\), got ndarray"),
    ("{pkg}.data.Bytes", r"{pkg}.data.Bytes: images must be float tensors .* torch.uint8"),
    ("{pkg}.data.NoTest", r"{pkg}.data.NoTest defines no test_dataloader\(\)"),
])
def test_bad_data_class_is_one_line_naming_the_path(user_pkg: str, path: str, message: str) -> None:
    dm = UserDataModule(path.format(pkg=user_pkg), {"limit": 50} if "Arrays" in path or "Bytes" in path else {})
    with pytest.raises(ValueError, match=message.format(pkg=user_pkg)) as err:
        dm.setup()
    assert "\n" not in str(err.value)


def test_init_args_that_do_not_fit_name_the_path(user_pkg: str) -> None:
    dm = UserDataModule(f"{user_pkg}.data.Digits", {"sise": 8})
    with pytest.raises(ValueError, match=rf"init_args \['sise'\] do not fit {user_pkg}.data.Digits\(size: int = 8"):
        dm.setup()
    with pytest.raises(ValueError, match="data.image_size does not apply to data.class_path"):
        UserDataModule(f"{user_pkg}.data.Digits", image_size=16)
    with pytest.raises(ValueError, match="data.init_args .* must be plain data"):
        UserDataModule(f"{user_pkg}.data.Digits", {"size": object()})


# --------------------------------------------------------------------------- the recipe
def test_recipe_sections_take_class_paths_and_round_trip(user_pkg: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    monkeypatch.setenv("USERPKG_MARKER", str(marker))
    text = f"""
    supernet: {{class_path: {user_pkg}.models.Net, init_args: {{widths: [4, 8]}}}}
    data:
      class_path: {user_pkg}.data.Digits
      init_args: {{size: 8}}
      batch_size: 16
    """
    (tmp_path / "r.yaml").write_text(textwrap.dedent(text))
    recipe = load_recipe(tmp_path / "r.yaml")
    assert not marker.exists()  # reading a recipe imports nothing: code runs only when the data is built
    assert (recipe.supernet.name, recipe.data.name) == ("Net", "Digits")  # reports name the classes
    saved = recipe.to_dict()
    assert saved["supernet"] == {"class_path": f"{user_pkg}.models.Net", "init_args": {"widths": [4, 8]}}
    assert "name" not in saved["data"] and "image_size" not in saved["data"] and "path" not in saved["data"]
    assert Recipe.from_dict(saved) == recipe
    dm = datamodule_from_section(recipe.data)
    assert not marker.exists()
    dm.setup()
    assert marker.exists() and dm.batch_size == 16


@pytest.mark.parametrize("data, message", [
    ({"supernet": {"class_path": "a.B", "name": "mbv3_tiny"}}, "supernet.class_path and supernet.name exclude"),
    ({"supernet": {"class_path": "a.B", "overrides": {"x": 1}}}, "supernet.class_path and supernet.overrides"),
    ({"data": {"class_path": "a.B", "path": "/x"}}, "data.class_path and data.path exclude each other"),
    ({"data": {"class_path": "a.B", "image_size": 8}}, "data.class_path and data.image_size exclude each other"),
    ({"supernet": {"init_args": {"w": 1}}}, "supernet.init_args needs supernet.class_path"),
    ({"data": {"class_path": "mypkg"}}, "data.class_path must be a dotted path such as mypkg.models.MyNet"),
    ({"supernet": {"class_path": "a.B; rm -rf"}}, "supernet.class_path must be a dotted path"),
    ({"supernet": {"class_path": 3}}, "supernet.class_path must be a string or null"),
])
def test_recipe_class_path_bad_input(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        Recipe.from_dict(data)
    assert "\n" not in str(err.value)


def test_set_can_swap_a_registered_name_for_a_class_path(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("supernet: {name: mbv3_tiny}\ndata: {name: digits, image_size: 8}\n")
    recipe = load_recipe(tmp_path / "r.yaml", {"supernet.name": None, "supernet.class_path": "a.b.Net",
                                               "data.name": None, "data.image_size": None, "data.class_path": "a.D"})
    assert recipe.supernet.class_path == "a.b.Net" and recipe.data.class_path == "a.D"


# --------------------------------------------------------------------------- entry points
def _dist(root: Path, pkg: str, entry_points: str) -> None:
    """An installed-looking distribution: a package and its `.dist-info` with METADATA and entry_points.txt."""
    info = root / f"{pkg}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def _python(code: str, root: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(ROOT)]), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd or root,
                          capture_output=True, text=True, timeout=300)


def test_entry_points_add_spaces_and_datasets_lazily(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "plugpkg").mkdir(parents=True)
    marker = tmp_path / "imported"
    (root / "plugpkg" / "__init__.py").write_text("")
    (root / "plugpkg" / "spaces.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        Path({str(marker)!r}).write_text("imported")
        from supernets import get_config
        from oneshot.data import DigitsDataModule

        def tiny_plug():
            return get_config("mbv3_test", num_classes=3)

        class PlugDigits(DigitsDataModule):
            name = "plug_digits"
    """))
    (root / "plugpkg" / "broken.py").write_text("raise RuntimeError('half-installed')\n")
    _dist(root, "plugpkg", """
        [oneshot.spaces]
        tiny_plug = plugpkg.spaces:tiny_plug
        broken_space = plugpkg.broken:space
        not_a_space = plugpkg.spaces:Path

        [oneshot.datasets]
        plug_digits = plugpkg.spaces:PlugDigits
        wrong_name = plugpkg.spaces:PlugDigits
    """)
    r = _python(f"""
        import json, pathlib, supernets
        from oneshot.data import create_datamodule, list_datamodules
        out = {{"listed": supernets.list_supernets("*plug*"), "all": supernets.list_supernets(),
                "datasets": list_datamodules()}}
        out["imported_by_list"] = pathlib.Path({str(marker)!r}).exists()
        out["classes"] = supernets.get_space("tiny_plug").name, supernets.get_config("tiny_plug").num_classes
        out["dataset"] = type(create_datamodule("plug_digits", image_size=8)).__name__
        errors = []
        for call in (lambda: supernets.get_config("broken_space"), lambda: supernets.get_config("not_a_space"),
                     lambda: create_datamodule("wrong_name")):
            try:
                call()
            except ValueError as exc:
                errors.append(str(exc))
        out["errors"] = errors
        print(json.dumps(out))
    """, root)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["listed"] == ["tiny_plug"] and {"mbv3_tiny", "broken_space", "not_a_space"} <= set(out["all"])
    assert {"digits", "plug_digits", "wrong_name"} <= set(out["datasets"])
    assert out["imported_by_list"] is False  # listing reads metadata only; the package loads when a name is asked
    assert out["classes"] == ["tiny_plug", 3] and out["dataset"] == "PlugDigits"
    broken, not_space, wrong = out["errors"]
    assert broken == ("entry point 'broken_space' (plugpkg.broken:space) in group 'oneshot.spaces' does not load: "
                      "RuntimeError: half-installed")
    assert "'not_a_space'" in not_space and "must name a function returning a supernets FamilyConfig" in not_space
    assert "'wrong_name'" in wrong and "PlugDigits.name is 'plug_digits', not the entry point's name" in wrong


# --------------------------------------------------------------------------- the supernet: bad input
MORE_MODELS_PY = '''  # written beside MODELS_PY by the `user_pkg` fixture

class Five(Net):
    """Five logits whatever the data: no num_classes argument for oneshot to fill in."""

    def __init__(self, in_chans: int = 3):
        super().__init__(5, in_chans)


class NoBlocks(nn.Module):
    """A plain torch model: nothing in it to search."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        self.conv, self.head = nn.Conv2d(in_chans, 8, 3, padding=1), nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


class Breaks(Net):
    def forward(self, x):
        return self.head(self.stem(x))  # (B, C, H, W) into a linear layer of C inputs: a shape error
'''


def _recipe(pkg: str, supernet: dict, **data: object) -> Recipe:
    return Recipe.from_dict({"supernet": supernet, "data": {"class_path": f"{pkg}.data.Digits", "batch_size": 16,
                                                            "max_train_samples": 32, **data}})


@pytest.mark.parametrize("supernet, message", [
    ({"class_path": "{pkg}.models.Nope"}, r"{pkg}.models.Nope' does not import: module '{pkg}.models' has no"),
    ({"class_path": "{pkg}.gone.Net"}, r"'{pkg}.gone.Net' does not import: ModuleNotFoundError: No module named"),
    ({"class_path": "{pkg}.models.Plain"}, r"'{pkg}.models.Plain' is not an nn.Module class"),
    ({"class_path": "{pkg}.models.Net", "init_args": {"width": [4]}}, r"{pkg}.models.Net\(\*\*.*\) fails: .*'width'"),
    ({"class_path": "{pkg}.models.Net", "init_args": {"num_classes": 7}},
     r"init_args num_classes=7 contradicts the data \(Digits has num_classes=10\)"),
    ({"class_path": "{pkg}.models.Five"}, r"{pkg}.models.Five returns \(1, 5\) for one image, but the data has 10 "),
    ({"class_path": "{pkg}.models.Breaks"}, r"{pkg}.models.Breaks"),
    ({"class_path": "{pkg}.models.NoBlocks"}, r"{pkg}.models.NoBlocks declares no choices, so there is nothing to "),
])
def test_bad_supernet_class_is_one_line_naming_the_path(user_pkg: str, supernet: dict, message: str) -> None:
    from oneshot.training.trainer import build_supernet

    recipe = _recipe(user_pkg, {k: v.format(pkg=user_pkg) if isinstance(v, str) else v for k, v in supernet.items()})
    dm = datamodule_from_section(recipe.data)
    dm.setup()
    with pytest.raises(ValueError, match=message.format(pkg=user_pkg)) as err:
        build_supernet(recipe, dm)
    assert "\n" not in str(err.value)


def test_supernet_gets_classes_and_channels_from_the_data(user_pkg: str) -> None:
    from oneshot.training.trainer import build_supernet

    recipe = _recipe(user_pkg, {"class_path": f"{user_pkg}.models.Net", "init_args": {"widths": [4, 6]}},
                     init_args={"size": 10})
    dm = datamodule_from_section(recipe.data)
    supernet = build_supernet(recipe, dm)
    config = supernet.config
    assert (config.family, config.class_path) == ("module", f"{user_pkg}.models.Net")
    assert dict(config.init_args) == {"widths": (4, 6), "num_classes": 10, "in_chans": 1} or \
        json.loads(json.dumps(config.init_args)) == {"widths": [4, 6], "num_classes": 10, "in_chans": 1}
    assert tuple(config.input_shape) == (1, 10, 10) and supernet.space.name == "Net"
    assert supernet(torch.zeros(2, 1, 10, 10), supernet.space.largest()).shape == (2, 10)


def test_a_registered_module_space_takes_overrides_as_init_args(user_pkg: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A space an entry point (or register_supernet) provides as a ModuleConfig is named like a shipped one."""
    from supernets import ModuleConfig
    from supernets.registry import _VARIANTS

    from oneshot.training.trainer import build_supernet

    config = ModuleConfig(f"{user_pkg}.models.Net", {"widths": [4, 6]}, input_shape=(3, 32, 32))
    monkeypatch.setitem(_VARIANTS._entries, "usernet", lambda: config)
    recipe = Recipe.from_dict({"supernet": {"name": "usernet", "overrides": {"widths": [6, 8]}},
                               "data": {"name": "digits", "image_size": 8, "max_train_samples": 32}})
    supernet = build_supernet(recipe, datamodule_from_section(recipe.data))
    assert tuple(supernet.config.input_shape) == (1, 8, 8) and supernet.space.name == "usernet"  # from the data
    assert json.loads(json.dumps(supernet.config.init_args)) == {"widths": [6, 8], "num_classes": 10, "in_chans": 1}
    from oneshot.cli.main import main  # `oneshot proxies --space` fits such a space to the data the same way

    table = tmp_path / "proxies.jsonl"
    assert main(["proxies", str(table), "--space", "usernet", "--data", "digits", "--image-size", "8",
                 "--num-subnets", "2", "--proxies", "params", "--no-progress"]) == 0
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert sum("arch" in r for r in rows) == 2 and all("width=" in r["arch"] for r in rows if "arch" in r)


def test_non_square_inputs_reach_the_supernet_latency_and_onnx(user_pkg: str, tmp_path: Path) -> None:
    """A user's data of 8 x 12 images: the module space takes (1, 8, 12), and so do latency timing and ONNX export."""
    from supernets import extract
    from supernets.onnx import export_onnx

    from oneshot.score.latency import measure_latency
    from oneshot.training.trainer import build_supernet

    recipe = _recipe(user_pkg, {"class_path": f"{user_pkg}.models.Net"}, init_args={"size": [8, 12]})
    dm = datamodule_from_section(recipe.data)
    supernet = build_supernet(recipe, dm)
    assert dm.input_shape == (1, 8, 12) and dm.image_size == [8, 12]
    assert tuple(supernet.config.input_shape) == (1, 8, 12)
    arch = supernet.space.largest()
    assert set(measure_latency(supernet.space, [arch], repeats=1, warmup=0)) == {str(arch)}
    config = supernet.config
    export_onnx(extract(supernet, arch), tmp_path / "net.onnx", tuple(config.input_shape), arch)
    shipped = Recipe.from_dict({"supernet": {"name": "mbv3_test"}, "data": recipe.to_dict()["data"]})
    with pytest.raises(ValueError, match="supernet 'mbv3_test' takes square images, but Digits gives 8x12 ones"):
        build_supernet(shipped, dm)


# --------------------------------------------------------------------------- end to end, as a user runs it
def _user_folder(root: Path, pkg: str) -> Path:
    """A user's project folder: their package and a recipe naming it (run there with PYTHONPATH=.)."""
    (root / pkg).mkdir(parents=True)
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "data.py").write_text(DATA_PY)
    (root / pkg / "models.py").write_text(MODELS_PY)
    recipe = {
        "name": "mine", "output_dir": "out",
        "supernet": {"class_path": f"{pkg}.models.Net", "init_args": {"widths": [4, 8]}},
        "data": {"class_path": f"{pkg}.data.DigitsDM", "init_args": {"size": 8}, "batch_size": 16,
                 "max_train_samples": 48, "max_eval_samples": 40},
        "train": {"epochs": 1, "threads": 1, "accelerator": "cpu", "log_every_n_steps": 1},
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root


def _env(pythonpath: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`oneshot train recipe.yaml` in the user's folder with PYTHONPATH=.: (the folder, the package name)."""
    pkg = f"userpkg_{uuid.uuid4().hex[:8]}"
    folder = _user_folder(tmp_path_factory.mktemp("project"), pkg)
    r = subprocess.run([sys.executable, "-m", "oneshot", "train", "recipe.yaml"], cwd=folder, env=_env("."),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert (folder / "out" / "mine" / "supernet.ckpt").is_file()
    return folder, pkg


def test_checkpoint_records_the_class_paths_and_rebuilds_everything_alone(trained: tuple[Path, str],
                                                                          tmp_path: Path) -> None:
    folder, pkg = trained
    ckpt = folder / "out" / "mine" / "supernet.ckpt"
    elsewhere = tmp_path / "elsewhere"  # no recipe here: everything comes from the checkpoint
    elsewhere.mkdir()
    code = f"""
        import json
        from oneshot import evaluate, load_supernet, search
        from oneshot.cli.main import main
        ckpt = {str(ckpt)!r}
        supernet, info = load_supernet(ckpt)
        out = {{"space": info["space"], "data": {{k: info["data"][k] for k in ("class_path", "init_args", "kind",
                                                                            "input_shape", "num_classes")}}}}
        records = evaluate(ckpt, num_subnets=3, device="cpu", table="ev.jsonl", progress=False)
        out["evaluated"] = [r["holdout_acc"] for r in records]
        out["searched"] = len(search(ckpt, budgets={{"params": [1e9]}}, n_trials=2, seed=0, run_dir="study"))
        out["arch"] = str(supernet.space.smallest())
        out["rc"] = [main(["extract", ckpt, "--arch", out["arch"], "--out", "subnets"]),
                     main(["retrain", "subnets", "--epochs", "1", "--out", "retrained.json"])]
        out["retrained"] = [r["arch"] for r in json.load(open("retrained.json"))["subnets"]]
        print(json.dumps(out))
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=elsewhere, env=_env(str(folder)),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["space"]["family"] == "module" and out["space"]["name"] == "Net"
    assert out["space"]["config"]["class_path"] == f"{pkg}.models.Net"
    assert out["space"]["config"]["init_args"] == {"widths": [4, 8], "num_classes": 10, "in_chans": 1}
    assert out["space"]["config"]["input_shape"] == [1, 8, 8]
    assert out["data"] == {"class_path": f"{pkg}.data.DigitsDM", "init_args": {"size": 8}, "kind": "datamodule",
                           "input_shape": [1, 8, 8], "num_classes": 10}
    assert len(out["evaluated"]) == 3 and all(0.0 <= a <= 1.0 for a in out["evaluated"])
    assert out["searched"] == 2 and out["rc"] == [0, 0] and out["retrained"] == [out["arch"]]


def test_without_the_user_package_each_command_names_the_import(trained: tuple[Path, str], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """Run in this process (a fresh one would spend seconds importing Lightning to show the same): the user's folder
    is not on the path here, and its package, should an earlier test have imported it, is dropped while this runs."""
    import importlib

    from oneshot.cli.main import main

    folder, pkg = trained
    ckpt = folder / "out" / "mine" / "supernet.ckpt"
    assert str(folder) not in sys.path
    for name in [m for m in sys.modules if m == pkg or m.startswith(f"{pkg}.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    for argv in (["evaluate", str(ckpt), "--num-subnets", "2", "--table", "t.jsonl", "--device", "cpu"],
                 ["extract", str(ckpt), "--arch", "x", "--out", "subs"],
                 ["search", str(ckpt), "--budget", "params=1e9", "--n-trials", "1"]):
        rc = main(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "error:" in line]
        assert rc == 2 and len(lines) == 1, err
        missing = f"class path '{pkg}.models.Net' does not import: ModuleNotFoundError: No module named '{pkg}'"
        assert missing in lines[0]
    assert pkg not in sys.modules


def test_resume_refuses_other_data_init_args(trained: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The data's class path and init arguments are part of what a resumed run must share with its checkpoint."""
    from oneshot.training.trainer import train

    folder, pkg = trained
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(folder)
    recipe = load_recipe(folder / "recipe.yaml", {"data.init_args": {"size": 8, "batch_size": 7}})
    with pytest.raises(ValueError, match=r"cannot resume .*: the recipe sets data.init_args=\{'size': 8, "
                                         r"'batch_size': 7\} but the checkpoint was trained with \{'size': 8\}"):
        train(recipe, progress=False)
