"""Bad recipes, overrides, training and data inputs, as a table: each is a one-line error naming the problem, and
no file that existed before the call has changed (same bytes, same modification time)."""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_RECIPE

from oneshot.cli import main
from oneshot.data import create_datamodule
from oneshot.recipe import load_recipe, parse_overrides
from oneshot.training.trainer import train

pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec).*")

TINY: dict[str, Any] = {
    **copy.deepcopy(TINY_RECIPE),
    "evaluate": {"num_subnets": 2, "calib_batches": 1, "calib_batch_size": 16, "batch_size": 20},
}
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a recipe file and its trained 1-epoch checkpoint (2 steps)."""
    root = tmp_path_factory.mktemp("bad")
    (root / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "output_dir": str(root / "runs")}))
    assert main(["train", str(root / "tiny.yaml"), "--no-progress"]) == 0
    (root / "list.yaml").write_text("- train\n- data\n")
    return root


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(*argv: str) -> Callable[[Path], list[str]]:
    return lambda root: [a.replace("{root}", str(root)) for a in argv]


def _api(fn: Callable[[Path], Any]) -> Callable[[Path], Callable[[], Any]]:
    return lambda root: (lambda: fn(root))


def _tiny(root: Path, **sets: Any) -> Any:
    return load_recipe(root / "tiny.yaml", {k.replace("__", "."): v for k, v in sets.items()})


def _crafted_cifar(root: Path) -> None:
    """A CIFAR folder whose data_batch_1 runs code when unpickled naively (it would create `pwned`)."""
    folder = root / "evil_cifar"
    folder.mkdir(exist_ok=True)

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {root / 'pwned'}",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}))
    try:
        create_datamodule("cifar10", path=str(folder)).setup()
    finally:
        assert not (root / "pwned").exists()  # nothing ran


def _corrupt_image(root: Path) -> None:
    from PIL import Image

    for c in ("a", "b"):
        (root / "images" / c).mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(root / "images" / c / f"{i}.png")
    (root / "images" / "b" / "3.png").write_bytes(b"not a png at all")
    dm = create_datamodule("imagefolder", path=str(root / "images"), image_size=8, holdout_fraction=0.3)
    dm.setup()
    for ds in (dm.train_set, dm.holdout_set, dm.test_set):  # the broken file is in one of the splits
        for i in range(len(ds)):
            ds[i]


# (id, CLI argv or API call, error type for the API, message that must appear)
CASES: list[tuple[str, Any, str]] = [
    ("epochs-not-a-number", _cli("train", "{root}/tiny.yaml", "--set", "train.epochs=ten"),
     r"train\.epochs must be an integer, got 'ten'"),
    ("epochs-negative", _cli("train", "{root}/tiny.yaml", "--set", "train.epochs=-3"),
     r"train\.epochs must be at least 1, got -3"),
    ("epochs-zero-untrained", _cli("train", "{root}/tiny.yaml", "--set", "train.epochs=0"),
     r"train\.epochs must be at least 1, got 0"),
    ("grad-clip-negative", _cli("train", "{root}/tiny.yaml", "--set", "train.grad_clip=-1"),
     r"train\.grad_clip must be positive"),
    ("grad-clip-word", _cli("train", "{root}/tiny.yaml", "--set", "train.grad_clip=big"),
     r"train\.grad_clip must be a number or null, got 'big'"),
    ("max-steps-zero", _cli("train", "{root}/tiny.yaml", "--set", "train.max_steps=0"),
     r"train\.max_steps must be -1 \(no limit\) or >= 1"),
    ("set-inside-a-value", _cli("train", "{root}/tiny.yaml", "--set", "train.epochs.x=1"),
     r"cannot set train\.epochs\.x: train\.epochs is a value"),
    ("set-twice", _cli("train", "{root}/tiny.yaml", "--set", "train.epochs=1", "--set", "train.epochs=2"),
     r"--set train\.epochs is given twice"),
    ("set-without-value", _cli("train", "{root}/tiny.yaml", "--set", "train.epochs"), r"--set expects KEY=VALUE"),
    ("unknown-key", _cli("train", "{root}/tiny.yaml", "--set", "train.epoch=1"), r"unknown key\(s\) \['epoch'\]"),
    ("recipe-is-a-list", _cli("train", "{root}/list.yaml"), r"must be a mapping of sections .* got a list"),
    ("accelerator-unknown", _cli("train", "{root}/tiny.yaml", "--set", "train.accelerator=foo"),
     r"train\.accelerator must be one of"),
    pytest.param("accelerator-gpu-without-gpu", _cli("train", "{root}/tiny.yaml", "--set", "train.accelerator=gpu"),
                 r"train\.accelerator='gpu' but no CUDA GPU", marks=NO_GPU),
    ("batch-size-zero", _cli("train", "{root}/tiny.yaml", "--set", "data.batch_size=0"),
     r"data\.batch_size must be at least 1, got 0"),
    ("holdout-fraction-out-of-range", _cli("train", "{root}/tiny.yaml", "--set", "data.holdout_fraction=1.5"),
     r"data\.holdout_fraction must be in \[0, 1\)"),
    ("image-size-too-small", _cli("train", "{root}/tiny.yaml", "--set", "data.image_size=2"),
     r"data\.image_size must be at least 4"),
    ("augment-not-a-bool", _cli("train", "{root}/tiny.yaml", "--set", "data.augment=maybe"),
     r"data\.augment must be true or false"),
    ("objective-predictor", _cli("train", "{root}/tiny.yaml", "--set", "search.objective=predictor"),
     r"search\.objective must be 'supernet' or one of predict\.models"),
    ("resume-under-another-split", _cli("train", "{root}/tiny.yaml", "--set", "data.split_seed=7", "--set",
                                        "data.holdout_fraction=0.3"),
     r"sets data\.(holdout_fraction|split_seed)=.* but the checkpoint was trained with"),
    ("resume-another-seed", _cli("train", "{root}/tiny.yaml", "--set", "seed=5"),
     r"sets seed=5 but the checkpoint was trained with 0"),
    ("resume-fewer-epochs", _cli("train", "{root}/tiny.yaml", "--set", "train.max_steps=1"),
     r"it has trained 2 steps, more than .* ask \(1\)"),
    ("run-train-phase-fewer-steps", _cli("run", "{root}/tiny.yaml", "--phases", "train", "--no-progress", "--set",
                                         "train.max_steps=1"), r"it has trained 2 steps, more than .* ask \(1\)"),
    ("resume-and-overwrite", _cli("train", "{root}/tiny.yaml", "--resume", "--overwrite"), r"give one"),
    ("evaluate-shipped-recipe-name-set", _cli("evaluate", "digits", "--set", "evaluate.batch_size=0"),
     r"evaluate\.batch_size must be at least 1"),
    ("evaluate-device-unknown", _cli("evaluate", "{root}/runs/tiny/supernet.ckpt", "--device", "foo",
                                     "--no-progress"), r"unknown device 'foo'"),
    pytest.param("evaluate-device-cuda-without-gpu", _cli("evaluate", "{root}/runs/tiny/supernet.ckpt", "--device",
                                                          "cuda", "--no-progress"),
                 r"device 'cuda' asked for, but 0 CUDA GPU", marks=NO_GPU),
    ("evaluate-batch-size-zero", _cli("evaluate", "{root}/runs/tiny/supernet.ckpt", "--batch-size", "0",
                                      "--no-progress"), r"batch_size must be a positive integer, got 0"),
    ("api-train-would-overwrite", _api(lambda root: train(_tiny(root), resume=False, progress=False)),
     r"already holds a trained supernet: resume it .* or replace it \(overwrite=True"),
    ("api-resume-and-overwrite", _api(lambda root: train(_tiny(root), resume=root / "runs/tiny/supernet.ckpt",
                                                         overwrite=True, progress=False)),
     r"overwrite=True trains from scratch; it cannot also resume"),
    ("cifar-batch-runs-code", _api(_crafted_cifar), r"refusing to load posix\.system|refusing to load nt\.system"),
    ("corrupt-image", _api(_corrupt_image), r"cannot read image '.*3\.png'"),
]


@pytest.mark.parametrize("case,make,message", CASES)
def test_bad_input_is_one_line_and_changes_nothing(trained: Path, capsys: pytest.CaptureFixture, case: str,
                                                   make: Any, message: str) -> None:
    before = _snapshot(trained)
    call = make(trained)
    if isinstance(call, list):  # a CLI command: exit status 2 and one line on stderr
        capsys.readouterr()
        assert main(call) == 2, case
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert re.search(message, err), err
    else:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert len(str(info.value).splitlines()) == 1
    after = _snapshot(trained)
    assert {k: v for k, v in after.items() if k in before} == before, case  # no existing file changed


def test_yaml_1_1_exponents_are_numbers_where_numbers_are_expected(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("train:\n  grad_clip: 1e1\n  optimizer: {name: SGD, lr: 1e-3, momentum: 0.9}\n")
    r = load_recipe(f, parse_overrides(["train.label_smoothing=1e-1"]))
    assert r.train.grad_clip == 10.0 and r.train.optimizer["lr"] == 0.001 and r.train.label_smoothing == 0.1
    assert isinstance(r.train.optimizer["lr"], float)
    r = load_recipe(f, {"train.optimizer.lr": "5e-2"})  # quoted on the command line: still a number
    assert r.train.optimizer["lr"] == 0.05
