"""Subnet evaluation from a real checkpoint: records, the result table (no re-evaluation, crash resume), CLI."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from oneshot.score.bn import CalibrationSet, recalibrate_bn
from oneshot.training.checkpoint import load_supernet
from oneshot.cli import main
from oneshot.data import datamodule_from_info
from oneshot.score.evaluate import TABLE_NAME, evaluate, read_archs, sample_archs
from oneshot.recipe import Recipe
from oneshot.training.trainer import train
from supernets import Arch, cost, create_supernet, extract

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec).*")

KW = dict(calib_batches=2, calib_batch_size=16, progress=False)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ev")
    recipe = Recipe.from_dict({
        "name": "tiny", "output_dir": str(out), "supernet": {"name": "mbv3_test"},
        "data": {"name": "digits", "image_size": 8, "batch_size": 32, "max_train_samples": 96, "max_eval_samples": 50},
        "train": {"epochs": 2, "threads": 1, "accelerator": "cpu"},
    })
    return train(recipe, progress=False)


@pytest.fixture
def fresh(ckpt: Path, tmp_path: Path) -> Path:
    """A copy of the checkpoint in its own folder, so each test starts without a result table."""
    path = tmp_path / "supernet.ckpt"
    path.write_bytes(ckpt.read_bytes())
    return path


def test_records_are_right(fresh: Path) -> None:
    supernet, info = load_supernet(fresh)
    arch = supernet.space.sample(np.random.default_rng(9))
    records = evaluate(fresh, [arch, str(supernet.space.smallest())], num_subnets=2, **KW)
    assert [r["arch"] for r in records[:2]] == [str(arch), str(supernet.space.smallest())] and len(records) == 4
    for r in records:
        c = cost(Arch.from_str(supernet.space, r["arch"]))
        assert (r["macs"], r["flops"], r["params"]) == (c.macs, c.flops, c.params)
        assert 0 <= r["holdout_acc"] <= 1 and r["holdout_loss"] > 0 and r["holdout_size"] == 50
        assert r["checkpoint"] == info["checkpoint_id"] and r["calib_batches"] == 2 and r["seed"] == 0
    # the holdout score equals an independent computation on the extracted, recalibrated subnet via the DataLoader
    dm = datamodule_from_info(info["data"])
    recalibrate_bn(supernet, CalibrationSet.from_datamodule(dm, 2, 16, seed=0), arch)
    sub = extract(supernet, arch)
    correct = total = 0
    with torch.no_grad():
        for x, y in dm.val_dataloader():
            correct += int((sub(x).argmax(-1) == y).sum())
            total += len(y)
    assert total == 50 and records[0]["holdout_acc"] == correct / total
    assert (fresh.parent / TABLE_NAME).is_file()


def test_second_call_evaluates_nothing_and_settings_are_keys(fresh: Path) -> None:
    first = evaluate(fresh, num_subnets=3, **KW)
    table = fresh.parent / TABLE_NAME
    content = table.read_bytes()
    again = evaluate(fresh, num_subnets=3, **KW)
    assert again == first and table.read_bytes() == content  # nothing evaluated, nothing appended
    other = evaluate(fresh, [r["arch"] for r in first], calib_batches=3, calib_batch_size=16, progress=False)
    assert table.read_bytes().count(b"\n") == content.count(b"\n") + 3  # other calibration: evaluated anew
    assert [r["key"] for r in other] != [r["key"] for r in first]


def test_interrupted_run_resumes(fresh: Path) -> None:
    full = evaluate(fresh, num_subnets=4, **KW)
    table = fresh.parent / TABLE_NAME
    lines = table.read_text().splitlines(keepends=True)  # header + 4 records
    table.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # crash while writing the 3rd record
    resumed = evaluate(fresh, num_subnets=4, **KW)
    new = table.read_text().splitlines(keepends=True)
    assert new[:3] == lines[:3] and len(new) == 5  # the two intact records kept, only the other two re-done
    assert [r["arch"] for r in resumed] == [r["arch"] for r in full]
    assert [r["holdout_acc"] for r in resumed] == [r["holdout_acc"] for r in full]  # deterministic calibration


def test_in_memory_supernet_and_bad_archs(fresh: Path) -> None:
    supernet, info = load_supernet(fresh)
    dm = datamodule_from_info(info["data"])
    archs = sample_archs(supernet.space, 2, seed=1)
    from_mem = evaluate(copy.deepcopy(supernet), archs, data=dm, **KW)
    from_file = evaluate(fresh, archs, table=fresh.parent / "other.jsonl", **KW)
    assert [r["holdout_acc"] for r in from_mem] == [r["holdout_acc"] for r in from_file]
    assert from_mem[0]["checkpoint"] == info["checkpoint_id"]  # the same weights give the same key
    with pytest.raises(ValueError, match="needs data="):
        evaluate(supernet, archs)
    foreign = create_supernet("nb201_test").space.smallest()
    with pytest.raises(ValueError, match="belongs to space 'nb201_test'"):
        evaluate(fresh, [foreign], **KW)
    with pytest.raises(ValueError, match="stage"):
        evaluate(fresh, ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], **KW)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(fresh, [], **KW)


def test_cli_evaluate(fresh: Path, tmp_path: Path, capsys) -> None:
    assert main(["evaluate", str(fresh), "--num-subnets", "2", "--calib-batches", "1", "--calib-batch-size", "8",
                 "--threads", "1", "--no-progress"]) == 0
    assert "2 subnets" in capsys.readouterr().out
    supernet, _ = load_supernet(fresh)
    arch_file = tmp_path / "archs.txt"
    arch_file.write_text(f"# chosen\n{supernet.space.smallest()}\n\n{supernet.space.largest()}\n")
    assert [str(a) for a in read_archs(arch_file, supernet.space)] == [str(supernet.space.smallest()),
                                                                        str(supernet.space.largest())]
    assert main(["evaluate", str(fresh), "--archs", str(arch_file), "--calib-batches", "1", "--threads", "1",
                 "--no-progress"]) == 0
    assert (fresh.parent / TABLE_NAME).read_text().count("\n") == 5  # header + 2 random + 2 listed
    arch_file.write_text("k3e2/k9e2\n")
    assert main(["evaluate", str(fresh), "--archs", str(arch_file), "--threads", "1"]) == 2
    assert "line 1" in capsys.readouterr().err
    corrupt = tmp_path / "bad.ckpt"
    corrupt.write_bytes(fresh.read_bytes()[:5000])  # truncated mid-file
    assert main(["evaluate", str(corrupt), "--num-subnets", "1", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "bad.ckpt" in err and "corrupt or truncated" in err and "Traceback" not in err
