"""Issue 22, storage: a PostgreSQL server stopped mid-study (the real server of tests/pg_server.py, stopped and
started again), a read-only SQLite database, and a storage password that never reaches a file on disk."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from oneshot.cli import main
from oneshot.study.search import search
from oneshot.study.storage import StorageError
from predictors.synthetic import make_objective
from supernets import get_space

from pg_server import Unavailable, fresh_database, postgres_cluster, skip_or_fail

PASSWORD = "Pw0rd-issue22"  # the throwaway server trusts loopback, so any password connects: it must not be saved


@pytest.fixture(scope="module")
def cluster():
    try:
        with postgres_cluster() as c:
            yield c
    except Unavailable as exc:
        skip_or_fail(exc)


def _with_password(url: str, password: str = PASSWORD) -> str:
    return url.replace("oneshot@", f"oneshot:{password}@")


def _objective_that(space, after: int, action):
    """The synthetic objective, calling `action()` once, at its `after`-th call."""
    f = make_objective(space, "pairwise", seed=0)
    calls = []

    @functools.wraps(f)  # the study knows its objective by the synthetic one's name and identity
    def objective(arch):
        calls.append(arch)
        if len(calls) == after:
            action()
        return f(arch)

    objective.calls = calls
    return objective


# A search process: argv = storage URL, n_trials, and the commands that stop and start the server (JSON). At its
# fourth evaluation it stops the server itself (so the outage surely falls on its next storage call, not on a
# stretch of computing) and has it started again 1.5 s later by a separate process.
WORKER = """
import functools, json, shlex, subprocess, sys, time
from oneshot.study.search import search
from predictors.synthetic import make_objective
from supernets import get_space

space = get_space("nb201_test")
f = make_objective(space, "pairwise", seed=0)
stop, start = json.loads(sys.argv[3]), json.loads(sys.argv[4])
calls = []

@functools.wraps(f)  # the study knows its objective by the synthetic one's name and identity
def objective(arch):
    calls.append(arch)
    print("evaluated", arch, flush=True)
    if len(calls) == 4:
        subprocess.run(stop, check=True, capture_output=True)
        subprocess.Popen(["sh", "-c", "sleep 1.5; exec " + shlex.join(start)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return f(arch)

result = search(space, objective, n_trials=int(sys.argv[2]), seed=0, storage=sys.argv[1], study_name="s",
                n_startup=3)
print("records", len(result.records), len({str(r.arch) for r in result.records}), flush=True)
"""


def test_server_stopped_mid_study_and_back_within_the_window_resumes(cluster) -> None:
    """A real search process on the real server, which stops mid-study and is started again 1.5 s later."""
    url = _with_password(fresh_database(cluster.url, "retry_back"))
    env = {**os.environ, "ONESHOT_STORAGE_RETRY_SECONDS": "30", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", WORKER, url, "8", json.dumps(cluster.stop_command()),
                           json.dumps(cluster.start_command())], capture_output=True, text=True, env=env, timeout=300)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err[-3000:]
    assert "connection lost" in err and "reconnected; the search resumed as a re-run does" in err, err[-3000:]
    assert PASSWORD not in err + out and "oneshot:***@127.0.0.1" in err
    assert "records 8 8" in out  # the target reached, each subnet once
    assert out.count("evaluated") <= 9  # at most the subnet in flight when the server went away is evaluated again
    study = optuna.load_study(study_name="s", storage=url)
    told = [t.user_attrs["oneshot"]["arch"] for t in study.get_trials()
            if t.state == TrialState.COMPLETE and t.user_attrs.get("oneshot", {}).get("status") == "evaluated"]
    assert len(told) == len(set(told)) == 8
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]  # none left in flight


def test_server_that_stays_down_is_one_line_naming_the_masked_url_and_the_cause(cluster, monkeypatch) -> None:
    monkeypatch.setenv("ONESHOT_STORAGE_RETRY_SECONDS", "1")
    url = _with_password(fresh_database(cluster.url, "retry_gone"))
    space = get_space("nb201_test")
    try:
        with pytest.raises(StorageError) as info:
            search(space, _objective_that(space, 3, cluster.stop), n_trials=6, seed=0, storage=url,
                   study_name="s", n_startup=3)
    finally:
        cluster.start()
    message = str(info.value)
    assert "\n" not in message and PASSWORD not in message
    assert message.startswith(f"cannot reach storage postgresql+psycopg://oneshot:***@127.0.0.1:{cluster.port}/")
    assert "refused" in message.lower() and "still failing after" in message


def test_read_only_sqlite_is_one_line(tmp_path: Path, capsys) -> None:
    space = get_space("nb201_test")
    search(space, make_objective(space, "additive", seed=0), n_trials=2, storage=f"sqlite:///{tmp_path}/s.db",
           study_name="s")
    before = (tmp_path / "s.db").read_bytes()
    code = main(["search", "nb201_test", "--objective", "synthetic:additive", "--n-trials", "4", "--study-name", "s",
                 "--run-dir", str(tmp_path / "run"), "--storage", f"sqlite:///file:{tmp_path}/s.db?mode=ro&uri=true"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "storage sqlite:///file:" in err and "read-only: attempt to write a readonly database" in err
    assert (tmp_path / "s.db").read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_sqlite_folder_is_one_line(tmp_path: Path, capsys) -> None:
    space = get_space("nb201_test")
    search(space, make_objective(space, "additive", seed=0), n_trials=2, storage=f"sqlite:///{tmp_path}/ro/s.db",
           study_name="s")
    os.chmod(tmp_path / "ro", 0o555)
    os.chmod(tmp_path / "ro" / "s.db", 0o444)
    try:
        code = main(["search", "nb201_test", "--objective", "synthetic:additive", "--n-trials", "4", "--study-name",
                     "s", "--run-dir", str(tmp_path / "run"), "--storage", f"sqlite:///{tmp_path}/ro/s.db"])
    finally:
        os.chmod(tmp_path / "ro", 0o755)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "read-only" in err, err


TINY = {
    "supernet.name": "mbv3_test", "data.image_size": 8, "data.max_train_samples": 64, "data.max_eval_samples": 40,
    "train.epochs": 1, "train.max_steps": 2, "train.threads": 1, "train.accelerator": "cpu",
    "evaluate.num_subnets": 3, "evaluate.calib_batches": 1, "predict.folds": 2, "search.n_trials": 3,
    "search.budgets": {"flops": [1.0e6]}, "retrain.epochs": 1, "retrain.extra_subnets": 0,
}


def test_storage_password_is_in_no_file_and_not_in_the_study_identity(cluster, tmp_path: Path, capsys) -> None:
    url = fresh_database(cluster.url, "secret_run")
    args = ["run", "digits", "--no-progress", "--set", f"output_dir={tmp_path}", "--set",
            f"search.storage={_with_password(url)}"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    assert main(args) == 0
    run = tmp_path / "digits"
    for name in ("recipe.json", "report/summary.json", "supernet.ckpt", "search/search.json"):
        assert (run / name).is_file()
    leaked = [str(p) for p in run.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert leaked == []
    assert "oneshot:***@127.0.0.1" in (run / "recipe.json").read_text()
    assert PASSWORD not in capsys.readouterr().out
    # another password for the same database: the same study, resumed (the identity holds no password)
    other = [a.replace(PASSWORD, "another-one") for a in args] + ["--phases", "search"]
    assert main(other) == 0
    out = capsys.readouterr().out
    assert "already has 3 evaluated subnets" in out
