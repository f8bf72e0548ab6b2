"""Studies in real Optuna storages: two worker processes sharing one study, and resuming a killed search."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from oneshot.study.search import search
from oneshot.study.storage import open_storage, redact
from predictors.synthetic import make_objective
from supernets import Arch, get_space

from barrier import meet, worker_env
from counting import counted
from pg_server import Unavailable, fresh_database, postgres_server, skip_or_fail

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A search worker: argv = storage URL, seed, n_trials, die after this many evaluations (0: never), sleep per eval (s),
# and a barrier: (folder, number of workers) to wait at until every worker has imported everything ('' for none).
WORKER = """
import functools, os, sys, time
from barrier import meet
from oneshot.study.search import search
from predictors.synthetic import make_objective
from supernets import get_space

url, seed, n, die_after, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
folder = ""
if sys.argv[6]:  # start searching together, however long each process took to import torch and optuna
    folder, n_workers = sys.argv[6].split("|")
    meet(folder, "ready", seed, int(n_workers))
space = get_space("nb201_test")
f = make_objective(space, "pairwise", seed=0)
calls = []

@functools.wraps(f)  # the study knows its objective by name and identity: the synthetic one's
def objective(arch):
    calls.append(arch)
    if die_after and len(calls) > die_after:
        os._exit(17)  # killed mid-trial: no cleanup, the trial stays RUNNING in the storage
    time.sleep(pause)
    if folder and len(calls) == 1:  # each worker returns its first result only once every worker has one
        meet(folder, "did", seed, int(n_workers), timeout=120)
    return f(arch)

search(space, objective, n_trials=n, seed=seed, storage=url, study_name="shared", n_startup=5)
"""


def _worker(url: str, seed: int, n: int, die_after: int = 0, pause: float = 0.0,
            barrier: str = "") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(seed), str(n), str(die_after), str(pause),
                             barrier],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env())


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server for this module (skipped where none can be started, unless CI requires one)."""
    try:
        with postgres_server() as url:
            yield url
    except Unavailable as exc:
        skip_or_fail(exc)


@pytest.fixture
def storage_url(request, tmp_path):
    """A fresh storage of the kind the test is parametrized with: sqlite, journal or postgresql."""
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    if kind == "journal":
        return f"journal:{tmp_path}/study.log"
    return fresh_database(request.getfixturevalue("postgres"), request.node.name.split("[")[0][-40:].lower())


def _evaluated(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.user_attrs.get("oneshot", {}).get("status") == "evaluated"]


@pytest.mark.parametrize("storage_url", ["sqlite", "postgresql"], indirect=True)
def test_two_workers_share_one_study_without_losing_or_duplicating_trials(storage_url, tmp_path):
    """A worker process (seed 0) and this process (seed 1, the worker's objective and settings) share one study: a
    second worker process would spend seconds importing torch and Optuna to do what this one does."""
    import functools
    import time

    url = storage_url
    n = 16
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    worker = _worker(url, 0, n, pause=0.05, barrier=f"{barrier}|2")
    space = get_space("nb201_test")
    f = make_objective(space, "pairwise", seed=0)

    calls = []

    @functools.wraps(f)  # as the worker's: the study knows its objective by name and identity
    def objective(arch):
        calls.append(arch)
        time.sleep(0.05)
        if len(calls) == 1:  # as the worker: the first result waits until both have one in flight, so that
            meet(barrier, "did", 1, 2, timeout=120)  # however the two are scheduled, the study is really shared
        return f(arch)

    def worker_alive() -> None:
        assert worker.poll() is None, worker.stderr.read()[-2000:]

    meet(barrier, "ready", 1, 2, alive=worker_alive)  # start together, once the worker has imported everything
    assert len(list(barrier.glob("ready-*"))) == 2, "the worker did not reach the barrier in 300 s"
    search(space, objective, n_trials=n, seed=1, storage=url, study_name="shared", n_startup=5, progress=False)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="shared", storage=url)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # no trial lost, no number given twice
    assert all(t.state.is_finished() for t in trials)  # none left running or waiting
    done = _evaluated(study)
    # The target is shared: the workers stop together (each checks before evaluating, so one may overshoot by 1).
    assert n <= len(done) <= n + 1
    assert {t.user_attrs["oneshot"]["seed"] for t in done} == {0, 1}  # both workers contributed
    archs = [t.user_attrs["oneshot"]["arch"] for t in done]
    assert len(set(archs)) == len(archs)  # a subnet in flight or done at another worker is not evaluated again


@pytest.mark.parametrize("storage_url", ["journal", "postgresql"], indirect=True)
def test_killed_search_resumes_the_same_study(storage_url):
    url = storage_url
    p = _worker(url, 0, 20, die_after=8)
    p.communicate(timeout=120)
    assert p.returncode == 17
    storage = open_storage(url)[0]
    study = optuna.load_study(study_name="shared", storage=storage)
    before = {t.number: (t.params, t.values) for t in study.get_trials() if t.state == TrialState.COMPLETE}
    assert len(_evaluated(study)) == 8
    assert sum(t.state == TrialState.RUNNING for t in study.get_trials()) == 1  # the trial it died in
    n_before = len(study.get_trials())

    space = get_space("nb201_test")
    calls, objective = counted(make_objective(space, "pairwise", seed=0))
    result = search(space, objective, n_trials=20, seed=0, storage=url, study_name="shared", n_startup=5)

    study = optuna.load_study(study_name="shared", storage=open_storage(url)[0])
    trials = study.get_trials()
    assert len(trials) > n_before
    assert {t.number: (t.params, t.values) for t in trials if t.number in before} == before  # earlier kept
    assert all(t.state != TrialState.RUNNING for t in trials)  # the dead process's trial was closed as failed
    assert len(_evaluated(study)) == 20 and len(calls) == 12  # it finished the job, nothing evaluated twice
    earlier = {Arch.from_str(space, t.user_attrs["oneshot"]["arch"]) for t in _evaluated(study)[:8]}
    assert not earlier & set(calls)
    assert len(result) == 20


# Opens a storage once every one of argv[3] processes has marked itself ready in the folder argv[2]: they all race
# to create the schema at the same instant, however long each took to import optuna.
OPENER = """
import os, sys
from barrier import meet
from oneshot.study.storage import open_storage, redact

url, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
meet(folder, "ready", os.getpid(), n)
open_storage(url)
"""


@pytest.mark.parametrize("storage_url", ["sqlite", "postgresql"], indirect=True)
def test_workers_opening_a_fresh_storage_together_all_succeed(storage_url, tmp_path):
    """Three processes create the same new schema at the same instant: the race must not kill any."""
    (tmp_path / "barrier").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, storage_url, str(tmp_path / "barrier"), "3"],
                              stderr=subprocess.PIPE, text=True, env=worker_env()) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-1500:]
    assert len(os.listdir(tmp_path / "barrier")) == 3  # all three reached the barrier


# A search worker killed while its sampler is proposing (after the study created the trial, before it has a
# subnet): argv = storage URL, the proposal to die in.
DIES_PROPOSING = """
import os, sys
from oneshot.study.search import search
from oneshot.study.search_samplers import RandomArchSampler
from predictors.synthetic import make_objective
from supernets import get_space

url, die_at = sys.argv[1], int(sys.argv[2])
proposals = []
propose = RandomArchSampler.propose

def dying(self, history):
    proposals.append(1)
    if len(proposals) == die_at:
        os._exit(17)  # as kill -9: the trial stays RUNNING, without parameters
    return propose(self, history)

RandomArchSampler.propose = dying
space = get_space("nb201_test")
search(space, make_objective(space, "pairwise", seed=0), sampler="random", n_trials=20, seed=0, storage=url,
       study_name="shared", n_startup=5)
"""


@pytest.mark.parametrize("storage_url", ["sqlite", "journal"], indirect=True)
def test_search_killed_while_proposing_resumes_as_if_never_killed(storage_url, monkeypatch):
    url = storage_url
    p = subprocess.Popen([sys.executable, "-c", DIES_PROPOSING, url, "4"], stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 17, err[-2000:]
    study = optuna.load_study(study_name="shared", storage=open_storage(url)[0])
    running = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert len(running) == 1 and not running[0].params  # killed inside the sampler: no subnet yet
    assert len(_evaluated(study)) == 5 + 3  # the random startup subnets, then three proposals

    space = get_space("nb201_test")
    f = make_objective(space, "pairwise", seed=0)
    waits = []
    monkeypatch.setattr("oneshot.study.loop.time.sleep", lambda s: waits.append(s))
    calls, objective = counted(f)
    result = search(space, objective, sampler="random", n_trials=20, seed=0, storage=url, study_name="shared",
                    n_startup=5)
    assert waits == []  # the dead worker's trial was closed, never waited for
    study = optuna.load_study(study_name="shared", storage=open_storage(url)[0])
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert study.trials[running[0].number].state == TrialState.FAIL
    assert len(calls) == 12 and len(set(calls)) == 12  # the rest of the job, nothing evaluated twice
    earlier = {Arch.from_str(space, t.user_attrs["oneshot"]["arch"]) for t in _evaluated(study)[:8]}
    assert not earlier & set(calls)
    # The same subnets as a search that was never killed (same seed; the random sampler's draws do not depend on
    # what it already proposed, so a fresh process walks the same sequence and skips what is done).
    whole = search(space, f, sampler="random", n_trials=20, seed=0, n_startup=5)
    assert {str(r.arch) for r in result.records} == {str(r.arch) for r in whole.records}
    assert result.best().score == whole.best().score


def test_unreachable_server_is_a_clear_error_without_the_password():
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"cannot open storage postgresql://u:\*\*\*@127.0.0.1:{port}/db: .*refused"):
        open_storage(f"postgresql://u:secret@127.0.0.1:{port}/db")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:secret@host:5432/db", "postgresql://u:***@host:5432/db"),
    ("postgresql://:secret@host/db", "postgresql://:***@host/db"),  # empty user
    ("postgresql://u:se@cr@et@host/db", "postgresql://u:***@host/db"),  # '@' inside the password
    ("mysql+pymysql://u:se/cret@host/db", "mysql+pymysql://u:***@host/db"),  # '/' inside the password
    ("postgresql://u:@host/db", "postgresql://u:***@host/db"),
    ("postgresql://u@host/db?password=secret&sslmode=require", "postgresql://u@host/db?password=***&sslmode=require"),
    ("postgresql://host/db?sslmode=require&PASSWORD=secret", "postgresql://host/db?sslmode=require&PASSWORD=***"),
    ("postgresql://u:secret@host/db?password=secret", "postgresql://u:***@host/db?password=***"),
    ("postgresql://u@host/db", "postgresql://u@host/db"),  # nothing secret: unchanged
    ("sqlite:///runs/a@b/study.db", "sqlite:///runs/a@b/study.db"),
    ("journal:/tmp/x:y@z.log", "journal:/tmp/x:y@z.log"),
    ("memory", "memory"),
])
def test_redact_hides_every_form_of_password(url, shown):
    assert redact(url) == shown
    assert "secret" not in redact(url) and "cr@et" not in redact(url)
