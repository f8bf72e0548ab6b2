"""Evaluation pays once per network: two spellings of one network (`space.canonical`) share one evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from oneshot.data import create_datamodule
from oneshot.score.bn import CalibrationSet, recalibrate_bn
from oneshot.score.evaluate import HoldoutSet, evaluate
from oneshot.table import read_table
from supernets import create_supernet

torch.set_num_threads(1)
KW = dict(calib_batches=1, calib_batch_size=8, progress=False)


@pytest.fixture(scope="module")
def data():
    dm = create_datamodule("digits", image_size=8, batch_size=32, max_train_samples=64, max_eval_samples=40)
    dm.setup()
    return dm


def _equivalent_pair(space):
    rng = np.random.default_rng(0)
    for _ in range(1000):
        a = space.sample(rng)
        if space.canonical(a) != a:
            return a, space.canonical(a)
    raise AssertionError(f"no non-canonical arch found in {space.name}")


@pytest.mark.parametrize("name", ["nb201_test", "macro_test"])
def test_equivalent_strings_are_evaluated_once(name: str, data, tmp_path: Path) -> None:
    net = create_supernet(name, in_chans=data.in_chans, num_classes=data.num_classes, image_size=8)
    torch.manual_seed(0)
    for p in net.parameters():  # random non-trivial weights: equal scores are then no accident of zero weights
        p.data.normal_(0, 0.5)
    spelled, canonical = _equivalent_pair(net.space)
    table = tmp_path / "t.jsonl"
    first = evaluate(net, [spelled], data=data, table=table, **KW)
    assert first.evaluated == 1
    assert first[0]["arch"] == str(spelled) and first[0]["canonical"] == str(canonical)  # says what was evaluated
    second = evaluate(net, [canonical, spelled], data=data, table=table, **KW)
    assert second.evaluated == 0  # the canonical network was scored already: served, not paid for again
    assert second[0]["arch"] == str(canonical) and "canonical" not in second[0]
    assert second[0]["holdout_acc"] == second[1]["holdout_acc"] == first[0]["holdout_acc"]
    _, records = read_table(table)
    assert [r["arch"] for r in records] == [str(canonical)]  # one record, under the canonical spelling
    # the served score is the canonical spelling's, computed here directly on its path. (In macro, moving an
    # identity layer changes which supernet weights a layer uses, so the spelled path's own score may differ: the
    # canonical architecture is the one scored, as in tabular benchmarks.)
    recalibrate_bn(net, CalibrationSet.from_datamodule(data, 1, 8, 0), canonical)
    acc, _ = HoldoutSet(data, 128).score(net, canonical)
    assert acc == first[0]["holdout_acc"]
