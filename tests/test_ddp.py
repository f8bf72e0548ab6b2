"""DDP on 2 CPU processes (gloo): every rank trains the same paths on its own data shard; weights stay identical."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from oneshot.training.checkpoint import load_supernet
from oneshot.training.path_samplers import create_path_sampler

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_ddp_ranks_train_same_paths_and_stay_identical(tmp_path: Path) -> None:
    # The worker runs as a script (sys.path[0] = tests/): put this tree first so it trains this checkout's code,
    # not whatever `oneshot` is installed.
    root = str(WORKER.parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, str(WORKER), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (r0["rank"], r1["rank"], r0["world_size"]) == (0, 1, 2)
    assert r0["global_step"] == r1["global_step"] == 4  # 64 images / (2 ranks x 16) = 2 steps per epoch, 2 epochs
    assert r0["labels"] != r1["labels"]  # each rank trained on its own shard of the data
    assert r0["paths"] == r1["paths"]  # ... with the same paths, derived from (seed, step), not from the rank
    supernet, info = load_supernet(tmp_path / "ddp" / "supernet.ckpt")
    sampler = create_path_sampler("sandwich", supernet.space, seed=0, num_random=1, distill=True)
    assert r0["paths"] == [(s, str(a)) for s in range(4) for a in sampler.paths(s)]
    moved = 0.0
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name  # identical on both ranks after every update
        assert torch.equal(r0["start"][name], r1["start"][name])
        moved += float((p - r0["start"][name]).abs().sum())
        assert torch.equal(p, supernet.state_dict()[name])  # and rank 0 wrote them to the checkpoint
    assert moved > 1.0  # training really changed the weights
