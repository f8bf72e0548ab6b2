"""Bad input to search, as a table: each is a one-line error naming the problem, raised before any work, and no
existing file changes (API: ValueError / TypeError; CLI: exit 2 with `oneshot search: error: ...`)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import optuna
import pytest

from oneshot.cli import main
from oneshot.study.search import search
from predictors.synthetic import make_objective
from supernets import get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = get_space("nb201_test")
F = make_objective(SPACE, "additive", seed=0)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A folder holding a finished search (its study.db and search.json must survive every bad call)."""
    folder = tmp_path_factory.mktemp("bad_input") / "run"
    search(SPACE, F, n_trials=3, sampler="random", run_dir=folder)
    return folder


# (arguments changed from a valid call, error type, what the message must say). Rows that need the objective to
# run keep the study in memory: an objective can only be found wrong by calling it.
API_CASES = [
    ({"n_trials": "3"}, TypeError, r"n_trials must be an integer, got '3' \(str\)"),
    ({"n_trials": 2.5}, TypeError, r"n_trials must be an integer, got 2.5"),
    ({"n_trials": True}, TypeError, r"n_trials must be an integer, got True"),
    ({"n_trials": 0}, ValueError, r"n_trials must be >= 1, got 0"),
    ({"seed": "abc"}, TypeError, r"seed must be an integer, got 'abc'"),
    ({"seed": -1}, ValueError, r"seed must be >= 0, got -1"),
    ({"n_startup": -2}, ValueError, r"n_startup must be >= 0"),
    ({"max_rejects": 0}, ValueError, r"max_rejects must be >= 1"),
    ({"objective": lambda a: None, "storage": "memory"}, TypeError, r"objective returned None \(NoneType\) for subnet"),
    ({"objective": lambda a: math.nan, "storage": "memory"}, ValueError, r"objective returned nan .* finite number"),
    ({"objective": lambda a: "0.9", "storage": "memory"}, TypeError, r"objective returned '0.9' \(str\)"),
    ({"objective": lambda a: [0.9], "storage": "memory"}, TypeError, r"objective returned \[0.9\] \(list\)"),
    ({"objective": 42}, TypeError, r"objective must be callable or a string, got int"),
    ({"objective": "accuracy"}, ValueError, r"unknown objective 'accuracy'"),
    ({"budgets": {"flops": "many"}}, ValueError, r"budget 'flops' limits must be numbers, got 'many'"),
    ({"budgets": {"flops": None}}, ValueError, r"budget 'flops' limits must be numbers, got None"),
    ({"budgets": {"flops": True}}, ValueError, r"budget 'flops' limits must be numbers, got True"),
    ({"budgets": {"flops": math.inf}}, ValueError, r"budget limit flops<=inf must be a positive number"),
    ({"budgets": {"flop": 1e6}}, ValueError, r"unknown cost 'flop' in budget flops?<=1e\+06; known costs"),
    ({"budgets": {"latency": 2.0}}, ValueError, r"unknown cost 'latency'.*costs=\{'latency': fn\}"),
    ({"budgets": "flops=1e6"}, TypeError, r"budgets must be a mapping like"),
    ({"budgets": {"flops": 10.0}}, ValueError, r"budget flops<=10 cannot be met in space 'nb201_test'"),
    ({"costs": {"latency": 5}}, TypeError, r"cost 'latency' must be a function arch -> value or a mapping"),
    ({"storage": "nosuch://host/db"}, ValueError, r"cannot open storage nosuch://host/db: "),
    ({"storage": "not a url"}, ValueError, r"cannot open storage not a url: "),
    ({"storage": 42}, TypeError, r"storage must be a URL string or an Optuna storage, got int"),
    ({"sampler": 3}, TypeError, r"sampler must be a name or an Optuna sampler, got int"),
    ({"sampler": "bayes"}, ValueError, r"unknown sampler 'bayes'; allowed: \['tpe'"),
    ({"strategy": "both"}, ValueError, r"unknown strategy 'both'"),
    ({"study_name": 5}, TypeError, r"study_name must be a non-empty string or None, got 5"),
    ({"new_study": "yes"}, TypeError, r"new_study must be True or False, got 'yes'"),
    ({"sampler_args": ["population_size", 3]}, TypeError, r"sampler_args must be a mapping, got list"),
    ({"sampler_args": {"seed": 5}}, ValueError, r"sampler_args may not set \['seed'\]: give search's own seed="),
]


@pytest.mark.parametrize("change, error, match", API_CASES, ids=[str(i) for i in range(len(API_CASES))])
def test_search_rejects_bad_input(change, error, match, run_dir):
    before = _files(run_dir.parent)
    kwargs = {"objective": F, "n_trials": 4, "seed": 0, "sampler": "random", "run_dir": run_dir, **change}
    objective = kwargs.pop("objective")
    with pytest.raises(error, match=match) as info:
        search(SPACE, objective, **kwargs)
    assert "\n" not in str(info.value)
    assert _files(run_dir.parent) == before


def test_a_password_in_a_bad_storage_url_is_never_shown(run_dir):
    with pytest.raises(ValueError, match=r"cannot open storage nosuch://u:\*\*\*@host/db") as info:
        search(SPACE, F, storage="nosuch://u:p@ss@host/db?password=pw2")
    assert "p@ss" not in str(info.value) and "pw2" not in str(info.value)


CLI_CASES = [
    (["--budget", "flops"], r"cannot read budget 'flops': expected COST=LIMIT"),
    (["--budget", "flops=abc"], r"cannot read budget 'flops=abc': limits must be numbers"),
    (["--budget", "flops=10"], r"budget flops<=10 cannot be met"),
    (["--budget", "latency=1.5"], r"unknown cost 'latency'"),
    (["--budget", "flop=1e9"], r"unknown cost 'flop'"),
    (["--n-trials", "0"], r"n_trials must be >= 1, got 0"),
    (["--n-trials", "x"], r"argument --n-trials: invalid int value: 'x'"),
    (["--seed", "abc"], r"argument --seed: invalid int value: 'abc'"),
    (["--storage", "nosuch://u:secret@host/db"], r"cannot open storage nosuch://u:\*\*\*@host/db"),
    (["--sampler", "bayes"], r"unknown sampler 'bayes'"),
    (["--strategy", "both"], r"argument --strategy: invalid choice: 'both'"),
    (["--objective", "accuracy"], r"unknown objective 'accuracy'"),
]


@pytest.mark.parametrize("extra, match", CLI_CASES, ids=[str(i) for i in range(len(CLI_CASES))])
def test_cli_search_rejects_bad_input(extra, match, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    search(SPACE, F, n_trials=3, sampler="random", run_dir=tmp_path / "runs" / "earlier")
    before = _files(tmp_path)
    argv = ["search", "nb201_test", "--objective", "synthetic:additive", "--n-trials", "3", "--no-progress", *extra]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("oneshot search: error: "), err
    assert re.search(match, err[-1]), err[-1]
    assert "secret" not in "\n".join(err)
    assert _files(tmp_path) == before  # nothing written (no runs/ folder either)
