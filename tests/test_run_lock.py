"""Issue 22 with real processes: one command per run folder (the lock, its owner named, a dead owner's lock taken
over), Ctrl-C during train and retrain (exit 130 and the same line as every other phase), and stored file names that
lead out of their folder refused by `oneshot extract --overwrite` and `oneshot retrain` run as commands."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import TINY_RECIPE
from oneshot.deploy.extract import extract_subnets
from supernets import get_space

SMALLEST = str(get_space("mbv3_test").smallest())
INTERRUPTED = "interrupted; finished work is saved and the next run resumes"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}


def _oneshot(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oneshot", *argv], capture_output=True, text=True, timeout=timeout,
                          env=ENV)


def _interactive() -> None:
    """Ctrl-C as in a terminal: a suite started in the background (`cmd &` in a script) hands its children SIGINT
    ignored, and a command started so rightly ignores Ctrl-C; these tests are about the terminal case."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "oneshot", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=_interactive)


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 240) -> list[str]:
    """Lines of `proc`'s stdout up to the first that contains `text`."""
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return seen
    proc.kill()
    raise AssertionError(f"{text!r} never printed; got {''.join(seen)[-2000:]} {proc.stderr.read()[-2000:]}")


def _one_error_line(stderr: str, command: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("note: ")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"oneshot {command}: "), lines[0]
    return lines[0]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _recipe(tmp_path: Path, **train) -> Path:
    recipe = {**TINY_RECIPE, "output_dir": str(tmp_path / "runs"), "train": {**TINY_RECIPE["train"], **train}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_second_command_on_a_run_folder_is_refused_and_a_dead_owners_lock_is_taken_over(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom oneshot.pipeline.run_folder import RunLock\n"
         "RunLock(sys.argv[1], 'oneshot run (holder)').__enter__()\nprint('locked', flush=True)\ntime.sleep(600)",
         str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        _wait_for(holder, "locked", timeout=120)
        owner = f"`oneshot run (holder)` (pid {holder.pid} on {socket.gethostname()}"
        for argv in (["run", str(recipe), "--phases", "predict"], ["train", str(recipe)],
                     ["evaluate", str(recipe)]):  # a recipe phase runs inside `oneshot run`: the same lock
            before = _snapshot(tmp_path)
            p = _oneshot(*argv)
            assert p.returncode == 2
            line = _one_error_line(p.stderr, argv[0])
            assert f"run folder {str(run_dir)!r} is in use by {owner}" in line, line
            assert _snapshot(tmp_path) == before  # nothing written, the lock file included
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    p = _oneshot("run", str(recipe), "--phases", "predict")  # the owner is dead: its lock is taken over, said so
    assert f"taking over the lock of `oneshot run (holder)` (pid {holder.pid}" in p.stderr
    assert p.returncode == 2 and "run `oneshot evaluate RECIPE`" in _one_error_line(p.stderr, "run")
    assert not (run_dir / ".oneshot.lock").exists()  # released at exit


def test_ctrl_c_during_train_exits_130_saying_so_and_holds_the_lock_meanwhile(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, epochs=400)
    trainer = _start("train", str(recipe))
    try:
        _wait_for(trainer, "train supernet: epoch 1/400")  # inside Lightning's fit loop
        other = _oneshot("run", str(recipe), "--phases", "train")
        assert other.returncode == 2
        assert f"is in use by `oneshot train` (pid {trainer.pid}" in _one_error_line(other.stderr, "run")
        trainer.send_signal(signal.SIGINT)
        _, err = trainer.communicate(timeout=120)
    finally:
        trainer.kill()
    assert trainer.returncode == 130, err[-3000:]
    assert _one_error_line(err, "train") == f"oneshot train: {INTERRUPTED}"
    assert (tmp_path / "runs" / "tiny" / "supernet.ckpt").is_file()  # the epochs finished are saved
    assert not (tmp_path / "runs" / "tiny" / ".oneshot.lock").exists()


def test_ctrl_c_during_retrain_exits_130_saying_so(tiny_checkpoint: Path, tmp_path: Path) -> None:
    extract_subnets(tiny_checkpoint, [{"arch": SMALLEST, "name": "a"}], tmp_path / "subnets", calib_batches=1)
    proc = _start("retrain", str(tmp_path / "subnets"), "--epochs", "400")
    try:
        _wait_for(proc, "retrain 1/1: epoch 1/400")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert _one_error_line(err, "retrain") == f"oneshot retrain: {INTERRUPTED}"


def test_stored_names_outside_their_folder_are_refused_by_real_commands(tiny_checkpoint: Path,
                                                                        tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file\n")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    ckpt = tmp_path / "ckpt" / "supernet.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    out = tmp_path / "a" / "subnets"
    extract_subnets(ckpt, [{"arch": SMALLEST, "name": "a"}], out, calib_batches=1)
    manifest = json.loads((out / "manifest.json").read_text())
    for file in ("../../victim.txt", str(victim)):
        manifest["subnets"][0]["file"] = file
        (out / "manifest.json").write_text(json.dumps(manifest))
        for argv in (["extract", str(ckpt), "--arch", SMALLEST, "--out", str(out), "--overwrite", "--format", "onnx",
                      "--calib-batches", "1"],
                     ["retrain", str(out), "--epochs", "1"]):
            p = _oneshot(*argv)
            assert p.returncode == 2, p.stderr[-3000:]
            line = _one_error_line(p.stderr, argv[0])
            assert f"file {file!r} lies outside the folder {str(out)!r}; refused" in line, line
            assert hashlib.sha256(victim.read_bytes()).hexdigest() == digest  # the victim is unchanged
            assert not victim.with_suffix(".onnx").exists()
