"""Resume keeps the truth: `oneshot train` is the train phase, a complete checkpoint is left alone, overwriting
needs asking, every run's compute is kept, and a rebuilt split must be the split the checkpoint was trained on."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import TINY_RECIPE

from oneshot.cli import main
from oneshot.data import datamodule_from_info
from oneshot.pipeline.run_folder import phase_runs, phase_seconds, record_phase
from oneshot.score.evaluate import evaluate
from oneshot.training.checkpoint import read_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec).*")

TINY: dict[str, Any] = copy.deepcopy(TINY_RECIPE)


def _stat(p: Path) -> tuple[bytes, int]:
    return p.read_bytes(), p.stat().st_mtime_ns


def _spy_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records the weights_only of every checkpoint Lightning loads through its checkpoint IO."""
    from lightning.fabric.plugins import TorchCheckpointIO

    seen: list[Any] = []
    original = TorchCheckpointIO.load_checkpoint

    def spy(self: Any, path: Any, map_location: Any = None, weights_only: Any = None) -> Any:
        seen.append(weights_only)
        return original(self, path, map_location=map_location, weights_only=weights_only)

    monkeypatch.setattr(TorchCheckpointIO, "load_checkpoint", spy)
    return seen


def test_train_command_resumes_like_the_phase_and_overwrites_only_when_asked(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp_path / "runs")}))
    ckpt = tmp_path / "runs" / "tiny" / "supernet.ckpt"
    assert main(["train", str(recipe), "--no-progress"]) == 0
    first = _stat(ckpt)
    assert read_checkpoint(ckpt)["global_step"] == 2

    # complete already: nothing is trained and nothing is written, byte for byte and mtime
    assert main(["train", str(recipe), "--no-progress"]) == 0
    assert _stat(ckpt) == first
    # the same through `oneshot run`'s train phase
    assert main(["run", str(recipe), "--phases", "train", "--no-progress"]) == 0
    assert _stat(ckpt) == first

    # more epochs: continues from step 2 to step 4, reading the checkpoint with weights_only=True
    loads = _spy_loads(monkeypatch)
    assert main(["train", str(recipe), "--no-progress", "--set", "train.epochs=2"]) == 0
    assert read_checkpoint(ckpt)["global_step"] == 4
    assert loads == [True]
    from oneshot.training.checkpoint import AtomicCheckpointIO

    with pytest.raises(ValueError, match="weights_only=True only"):
        AtomicCheckpointIO().load_checkpoint(ckpt, weights_only=False)

    # --overwrite: from scratch
    assert main(["train", str(recipe), "--no-progress", "--overwrite"]) == 0
    assert read_checkpoint(ckpt)["global_step"] == 2

    runs = phase_runs(tmp_path / "runs" / "tiny")["train"]
    # the overwrite started the phase over: its earlier runs (first, two no-op resumes, continuation) are dropped
    assert len(runs) == 1 and runs[0]["resumed"] is False


def test_phase_seconds_keep_every_run(tmp_path: Path) -> None:
    (tmp_path / "phases.json").write_text(json.dumps({"train": 170.5, "evaluate": 5.0}))  # an older run folder
    record_phase(tmp_path, "train", 3.25)  # a resume: it has run here before
    record_phase(tmp_path, "search", 2.0)
    assert phase_seconds(tmp_path) == {"train": 170.5 + 3.25, "evaluate": 5.0, "search": 2.0}
    runs = phase_runs(tmp_path)
    assert [r["resumed"] for r in runs["train"]] == [False, True] and runs["search"][0]["resumed"] is False
    record_phase(tmp_path, "train", 1.0, replace=True)
    assert phase_seconds(tmp_path)["train"] == 1.0


def test_report_lists_resumed_runs_apart(tmp_path: Path) -> None:
    from oneshot.pipeline.report import write_report

    record_phase(tmp_path, "train", 172.6)
    record_phase(tmp_path, "train", 3.1)
    md = write_report(tmp_path / "report", {"title": "t", "phases": phase_seconds(tmp_path),
                                            "phase_runs": phase_runs(tmp_path)}).read_text()
    assert "| train | 175.7 | 1: 3.1 s |" in md and "| **total** | **175.7** |" in md


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digest")
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({**TINY, "output_dir": str(root)}))
    assert main(["train", str(recipe), "--no-progress"]) == 0
    return root / "tiny" / "supernet.ckpt"


def test_checkpoint_stores_the_split_digest_and_a_rebuild_matches(ckpt: Path) -> None:
    info = read_checkpoint(ckpt)["oneshot"]["data"]
    dm = datamodule_from_info(info)
    dm.setup()
    assert len(info["split_digest"]) == 16 and dm.split_digest() == info["split_digest"]
    # the digest is of membership: another split seed moves images, so the digest differs
    other = datamodule_from_info(info, split_seed=info["split_seed"] + 1)
    other.setup()
    assert other.split_digest() != info["split_digest"]


def test_evaluate_refuses_a_checkpoint_whose_split_no_longer_rebuilds(ckpt: Path, tmp_path: Path) -> None:
    raw = torch.load(ckpt, weights_only=True)
    raw["oneshot"]["data"]["split_digest"] = "0" * 16  # as if numpy / scikit-learn had moved images
    moved = tmp_path / "moved.ckpt"
    torch.save(raw, moved)
    with pytest.raises(ValueError, match="split differs from the one the checkpoint was trained with"):
        evaluate(moved, num_subnets=1, calib_batches=1, calib_batch_size=8, progress=False)
    assert not (tmp_path / "evaluations.jsonl").exists()  # refused before anything was written
    records = evaluate(ckpt, num_subnets=1, calib_batches=1, calib_batch_size=8, progress=False,
                       table=tmp_path / "ok.jsonl")
    assert len(records) == 1  # the untouched checkpoint rebuilds its split and evaluates
