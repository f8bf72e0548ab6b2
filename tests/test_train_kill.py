"""kill -9 in the middle of an epoch, then resume: the final weights equal an uninterrupted run's exactly.

The child process trains a tiny recipe with `train.checkpoint_every_n_steps`; when step K is about to start (step
K's checkpoint is on disk) it says so on stdout and blocks; the parent then SIGKILLs it. No sleeps, no timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oneshot.recipe import Recipe
from oneshot.training.checkpoint import read_checkpoint
from oneshot.training.trainer import train

pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|pre-optimization).*")

RECIPE = {
    "name": "kill", "seed": 3,
    "supernet": {"name": "mbv3_test"},
    "data": {"name": "digits", "image_size": 8, "batch_size": 16, "max_train_samples": 96, "max_eval_samples": 40},
    "train": {"sampler": "fair", "epochs": 2, "threads": 1, "accelerator": "cpu", "checkpoint_every_n_steps": 2,
              "optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
              "scheduler": {"name": "cosine"}},
}  # 6 steps per epoch; killed at step 9, i.e. in the middle of the second epoch, with step 8's checkpoint saved

CHILD = """
import json, os, sys
import lightning as L
import torch
from oneshot.recipe import Recipe
from oneshot.training.trainer import train

torch.set_num_threads(1)
kill_at = int(sys.argv[2])

class Signal(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == kill_at:
            print(f"STEP {kill_at}", flush=True)
            sys.stdin.read()  # blocks until the parent kills this process

train(Recipe.from_dict(json.loads(sys.argv[1])), callbacks=[Signal()], progress=False)
print("FINISHED", flush=True)
"""


def _recipe(out: Path) -> dict:
    return {**RECIPE, "output_dir": str(out)}


def test_kill_9_mid_epoch_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = train(Recipe.from_dict(_recipe(tmp_path / "a")), progress=False)

    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(_recipe(tmp_path / "b")), "9"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=env)
    try:
        lines = []
        for line in child.stdout:  # blocks until the child reaches step 9 (or ends)
            lines.append(line.strip())
            if line.startswith("STEP"):
                break
        assert lines[-1:] == ["STEP 9"], lines
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    ckpt = tmp_path / "b" / "kill" / "supernet.ckpt"
    assert read_checkpoint(ckpt)["global_step"] == 8  # the last periodic save before the kill, mid-epoch

    resumed = train(Recipe.from_dict(_recipe(tmp_path / "b")), progress=False)
    a, b = read_checkpoint(straight), read_checkpoint(resumed)
    assert a["global_step"] == b["global_step"] == 12
    for k in a["state_dict"]:  # bit-identical: same batches, augmentation, paths, optimizer and LR after the resume
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
