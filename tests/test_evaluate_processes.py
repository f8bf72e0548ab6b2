"""`evaluate` from several processes on one table, and after a kill -9: every subnet evaluated once, results exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oneshot.score.evaluate import evaluate
from oneshot.table import read_table

from barrier import meet, worker_env

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|log_every_n_steps).*")

KW = dict(calib_batches=1, calib_batch_size=8, threads=1)  # as the worker: same float summation order

# argv: barrier folder, workers, checkpoint, table, output JSON, subnets, kill after this many evaluations (-1: never)
WORKER = """
import json, os, sys
from pathlib import Path
from barrier import meet
barrier, workers, ckpt, table, out, n, kill_after = sys.argv[1:8]
import torch
torch.set_num_threads(1)
from oneshot.score import evaluate as ev
if int(kill_after) >= 0:
    real, calls = ev.recalibrate_bn, [0]
    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] > int(kill_after):  # the next subnet is claimed but not stored: die as under kill -9
            os.kill(os.getpid(), 9)
        return real(*args, **kwargs)
    ev.recalibrate_bn = dying
meet(barrier, "ready", os.getpid(), int(workers))  # start together once all have imported
records = ev.evaluate(ckpt, num_subnets=int(n), calib_batches=1, calib_batch_size=8, progress=False, table=table)
Path(out).write_text(json.dumps({"evaluated": records.evaluated, "records": list(records)}))
"""


@pytest.fixture
def ckpt(tiny_checkpoint: Path) -> Path:
    return tiny_checkpoint


def _start(tmp_path: Path, ckpt: Path, table: Path, i: int, workers: int, n: int, kill_after: int = -1):
    barrier = tmp_path / "barrier"
    barrier.mkdir(exist_ok=True)
    args = [str(barrier), str(workers), str(ckpt), str(table), str(tmp_path / f"out{i}.json"), str(n), str(kill_after)]
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], stderr=subprocess.PIPE, text=True,
                            env=worker_env())


def test_two_processes_on_one_table_evaluate_each_subnet_once(ckpt: Path, tmp_path: Path) -> None:
    """A worker process and this one evaluate together (this process is the second: a second worker would spend
    seconds importing Lightning to do what this one does)."""
    n, table = 12, tmp_path / "shared.jsonl"
    worker = _start(tmp_path, ckpt, table, 1, 2, n)
    barrier = tmp_path / "barrier"

    def worker_alive() -> None:
        assert worker.poll() is None, worker.stderr.read()

    meet(barrier, "ready", os.getpid(), 2, alive=worker_alive)  # start together, once the worker has imported
    assert len(list(barrier.glob("ready-*"))) == 2, "the worker did not reach the barrier in 300 s"
    records = evaluate(ckpt, num_subnets=n, table=table, progress=False, **KW)
    assert worker.wait() == 0, worker.stderr.read()
    mine = json.loads(json.dumps({"evaluated": records.evaluated, "records": list(records)}))  # as the worker's
    outs = [mine, json.loads((tmp_path / "out1.json").read_text())]
    lines = table.read_text().splitlines()[1:]
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == n == len(set(keys))  # 12 records, 12 distinct subnets: nothing evaluated twice
    assert sum(o["evaluated"] for o in outs) == n  # the work was split, not repeated
    a, b = ({r["key"]: r["holdout_acc"] for r in o["records"]} for o in outs)
    assert a == b and set(a) == set(keys)  # both processes return every subnet, with the same scores
    assert not Path(str(table) + ".claims").exists()


def test_killed_evaluation_resumes_to_the_uninterrupted_result(ckpt: Path, tmp_path: Path) -> None:
    n, table = 8, tmp_path / "killed.jsonl"
    proc = _start(tmp_path, ckpt, table, 0, 1, n, kill_after=3)
    assert proc.wait() == -signal.SIGKILL
    _, stored = read_table(table)
    assert len(stored) == 3  # three stored; the fourth was claimed when the process died
    claims = list(Path(str(table) + ".claims").iterdir())
    assert len(claims) == 1  # the dead process's claim is left behind ...
    resumed = evaluate(ckpt, num_subnets=n, table=table, progress=False, **KW)
    assert resumed.evaluated == n - 3  # ... and taken over: only the missing subnets are evaluated
    whole = evaluate(ckpt, num_subnets=n, table=tmp_path / "whole.jsonl", progress=False, **KW)
    assert [(r["key"], r["holdout_acc"], r["holdout_loss"]) for r in resumed] == \
        [(r["key"], r["holdout_acc"], r["holdout_loss"]) for r in whole]
    _, final = read_table(table)
    assert sorted(r["key"] for r in final) == sorted(r["key"] for r in whole)
    assert len(table.read_text().splitlines()) == n + 1 and not Path(str(table) + ".claims").exists()
