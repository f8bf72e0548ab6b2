"""What the commands tell a user about what they wrote and what to do next: where `search.json` went, the supernet
accuracy carried from a search into `oneshot retrain`, `--overwrite` named where a folder holds another format, the
ONNX file named, no "writing to" before an error, a recomputed LR schedule said aloud, and the epoch bar counting
as the log lines do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from oneshot.cli import main
from oneshot.deploy.extract import read_manifest
from oneshot.study.budget import Budget
from oneshot.study.results import SearchRecord, SearchResult
from oneshot.training.checkpoint import load_supernet
from supernets import cost

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|log_every_n_steps|num_workers).*")
CAL = ["--calib-batches", "1"]


@pytest.fixture
def fresh(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A copy of the shared checkpoint: commands here write evaluation tables beside it."""
    path = tmp_path / "supernet.ckpt"
    path.write_bytes(tiny_checkpoint.read_bytes())
    return path


def test_search_says_where_its_result_went(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "s"
    assert main(["search", "nb201_test", "--objective", "synthetic:additive", "--budget", "flops=5e5",
                 "--n-trials", "4", "--run-dir", str(run_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"search result: {run_dir / 'search.json'}" in out and (run_dir / "search.json").is_file()
    assert SearchResult.load(run_dir / "search.json").path == run_dir / "search.json"


def test_a_manifest_from_search_carries_supernet_acc_into_retrain(fresh: Path, tmp_path: Path, capsys) -> None:
    space = load_supernet(fresh)[0].space
    archs = sorted({space.smallest(), space.largest(), space.sample(np.random.default_rng(3))},
                   key=lambda a: cost(a).flops)
    assert len(archs) == 3
    # search.json as `oneshot search` writes it, each budget choosing its own subnet (the costlier, the better
    # scored); its scores are the search's objective, not a supernet estimate
    records = [SearchRecord(a, 0.5 + i / 10, {"macs": cost(a).macs, "flops": cost(a).flops, "params": cost(a).params},
                            i, "s", 0, i) for i, a in enumerate(archs)]
    budgets = [Budget.of(flops=cost(a).flops) for a in archs]
    search = SearchResult(space, records, budgets, {"sampler": "random"}).save(tmp_path / "search.json")
    out = tmp_path / "subnets"
    assert main(["extract", str(fresh), "--search", str(search), "--out", str(out), *CAL]) == 0
    evaluated = {}
    for line in (fresh.parent / "evaluations.jsonl").read_text().splitlines()[1:]:
        r = json.loads(line)
        evaluated[r["arch"]] = r["holdout_acc"]
    _, entries = read_manifest(out)
    assert {e["arch"] for e in entries} == {str(a) for a in archs}
    for e in entries:  # the recalibrated holdout accuracy (the evaluation table's), not the search score
        assert e["supernet_acc"] == evaluated[e["arch"]]
    capsys.readouterr()
    assert main(["retrain", str(out), "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "supernet acc –" not in printed and "rank correlation: n/a" not in printed
    assert "supernet vs standalone over 3 distinct subnets: Kendall tau" in printed
    for e in entries:
        assert f"{e['supernet_acc']:.4f}" in printed


def test_extract_names_overwrite_for_another_format_and_the_onnx_file(fresh: Path, tmp_path: Path, capsys) -> None:
    arch = str(load_supernet(fresh)[0].space.smallest())
    out = tmp_path / "x"
    assert main(["extract", str(fresh), "--arch", arch, "--out", str(out), *CAL]) == 0
    capsys.readouterr()
    assert main(["extract", str(fresh), "--arch", arch, "--out", str(out), "--format", "safetensors", *CAL]) == 0
    said = capsys.readouterr().out
    assert "already extracted (subnet00.pt) as pt; give --overwrite to write it as safetensors" in said
    assert not list(out.glob("*.safetensors"))
    assert main(["extract", str(fresh), "--arch", arch, "--out", str(out), "--format", "safetensors", "--overwrite",
                 *CAL]) == 0
    entry = read_manifest(out)[1][0]
    assert entry["file"] == "subnet00.safetensors" and (out / entry["file"]).is_file()
    capsys.readouterr()
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["extract", str(fresh), "--arch", arch, "--out", str(tmp_path / "o"), "--format", "onnx", *CAL]) == 0
    said = capsys.readouterr().out
    assert f"wrote {tmp_path / 'o' / 'subnet00.safetensors'} and {tmp_path / 'o' / 'subnet00.onnx'}" in said
    assert "subnet00.safetensors + subnet00.onnx:" in said and (tmp_path / "o" / "subnet00.onnx").is_file()


def test_evaluate_of_a_missing_checkpoint_writes_nothing_and_says_only_the_error(tmp_path: Path, capsys,
                                                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "nothere.ckpt"]) == 2
    out, err = capsys.readouterr()
    assert "writing to" not in out
    assert err.strip() == "oneshot evaluate: error: supernet checkpoint 'nothere.ckpt' does not exist"
    assert list(tmp_path.iterdir()) == []


def _recipe(tmp_path: Path, epochs: int):
    from conftest import TINY_RECIPE

    from oneshot.recipe import Recipe

    d = json.loads(json.dumps(TINY_RECIPE))
    d["output_dir"] = str(tmp_path)
    d["train"]["epochs"] = epochs
    d["train"]["scheduler"] = {"name": "cosine", "warmup_steps": 0}
    return Recipe.from_dict(d)


def test_a_continued_run_says_its_lr_schedule_was_recomputed(tmp_path: Path, capsys) -> None:
    from oneshot.training.trainer import train

    train(_recipe(tmp_path, 1), progress=False)
    assert "schedule" not in capsys.readouterr().out
    train(_recipe(tmp_path, 2), progress=False)  # 2 steps per epoch: the cosine ended at 0, now restarts halfway
    said = capsys.readouterr().out
    assert "continuing at step 2 of 4: the learning-rate schedule is recomputed for the new length, so the LR " \
           "moves from 0 (where the checkpoint's schedule left it) to 0.025" in said
    train(_recipe(tmp_path, 3), progress=False, overwrite=True)  # from scratch: nothing continued, nothing said
    assert "schedule" not in capsys.readouterr().out


def test_the_epoch_bar_counts_epochs_as_the_log_lines_do() -> None:
    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel

    from oneshot.console import EpochBar, quiet_lightning

    bar, seen = EpochBar("train supernet"), []

    class Spy(L.Callback):
        def on_train_epoch_end(self, trainer, module) -> None:
            seen.append(bar.train_progress_bar.desc.rstrip(": "))  # tqdm adds ": "

    with quiet_lightning():
        trainer = L.Trainer(max_epochs=2, limit_train_batches=2, callbacks=[bar, Spy()], logger=False,
                            enable_checkpointing=False, enable_model_summary=False, accelerator="cpu",
                            limit_val_batches=0, num_sanity_val_steps=0)
        trainer.fit(BoringModel())
    assert seen == ["train supernet: epoch 1/2", "train supernet: epoch 2/2"]


def test_extract_of_a_bad_arch_says_only_the_error(fresh: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["extract", str(fresh), "--arch", "w9.0:k3e2", "--out", str(out), *CAL]) == 2
    said, err = capsys.readouterr()
    assert "writing to" not in said
    assert err.startswith("oneshot extract: error: arch string 'w9.0:k3e2'") and len(err.strip().splitlines()) == 1
    assert not out.exists()
