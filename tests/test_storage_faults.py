"""Issue 22, storage: a PostgreSQL server stopped mid-study (the real server of tests/pg_server.py, stopped and
started again), a read-only SQLite database, and a storage password that never reaches a file on disk."""

from __future__ import annotations

import functools
import json
import os
import threading
from pathlib import Path

import pytest

from oneshot.cli import main
from oneshot.study.search import search
from oneshot.study.storage import StorageError
from predictors.synthetic import make_objective
from supernets import get_space

from pg_server import Unavailable, fresh_database, postgres_cluster

PASSWORD = "Pw0rd-issue22"  # the throwaway server trusts loopback, so any password connects: it must not be saved


@pytest.fixture(scope="module")
def cluster():
    try:
        with postgres_cluster() as c:
            yield c
    except Unavailable as exc:
        if os.environ.get("ONESHOT_TEST_POSTGRES") == "require":
            pytest.fail(f"PostgreSQL required but unavailable: {exc}")
        pytest.skip(str(exc))


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


def test_server_stopped_mid_study_and_back_within_the_window_resumes(cluster, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ONESHOT_STORAGE_RETRY_SECONDS", "30")
    url = _with_password(fresh_database(cluster.url, "retry_back"))
    space = get_space("nb201_test")

    def outage():
        cluster.stop()
        threading.Timer(1.5, cluster.start).start()

    objective = _objective_that(space, 4, outage)
    result = search(space, objective, n_trials=8, seed=0, storage=url, study_name="s", n_startup=3)
    err = capsys.readouterr().err
    assert "connection lost" in err and "reconnected; the search resumed as a re-run does" in err
    assert PASSWORD not in err and "oneshot:***@127.0.0.1" in err
    archs = [str(r.arch) for r in result.records]
    assert len(archs) == 8 and len(set(archs)) == 8  # the target reached, no subnet told twice
    # at most the one subnet in flight when the server went away is evaluated again
    assert len(objective.calls) <= 9


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
