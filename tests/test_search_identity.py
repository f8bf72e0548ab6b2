"""A search never returns another search's results: study identity, honest resume, tight budgets, pareto end to
end, and reading result files."""

from __future__ import annotations

import json

import optuna
import pytest

from oneshot.cli import main
from oneshot.study.results import SearchResult
from oneshot.study.search import search
from oneshot.study.search_samplers import neighbours
from predictors import create_predictor
from predictors.synthetic import make_objective
from supernets import cost, get_space

from counting import counted

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = get_space("nb201_test")
F = make_objective(SPACE, "pairwise", seed=3)


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_api_keeps_studies_in_memory_unless_told(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls, f = counted(F)
    first = search(SPACE, f, n_trials=5, sampler="random")
    second = search(SPACE, f, n_trials=5, sampler="random")
    assert len(calls) == 10  # the second call searched anew: nothing was kept between them
    assert first.to_records()[0]["arch"] == second.to_records()[0]["arch"]  # same seed, same search
    assert first.settings["storage"] == "memory" and not list(tmp_path.iterdir())


def test_a_saved_study_records_what_defines_it(tmp_path):
    result = search(SPACE, F, budgets={"flops": 5e5}, n_trials=4, sampler="rea", seed=2, run_dir=tmp_path)
    identity = result.studies[0].user_attrs["identity"]
    assert identity == {"space": f"nb201_test ({SPACE.fingerprint})", "budget": "flops<=500000",
                        "objective": f"callable {F.__module__}.{F.__qualname__} [synthetic pairwise noise=0 seed=3 "
                                     "cost_weight=1]", "strategy": "constrained",
                        "sampler": "rea", "sampler_args": {}, "seed": 2, "start": None}
    assert result.settings["study_name"] == "nb201_test-objective-flops<=500000-seed2"


def test_another_seed_in_the_same_folder_is_another_study(tmp_path):
    calls, f = counted(F)
    a = search(SPACE, f, n_trials=6, sampler="random", seed=0, run_dir=tmp_path)
    b = search(SPACE, f, n_trials=6, sampler="random", seed=1, run_dir=tmp_path)
    assert len(calls) == 12 and a.settings["study_name"] != b.settings["study_name"]
    assert {r.seed for r in a.records} == {0} and {r.seed for r in b.records} == {1}
    again = search(SPACE, f, n_trials=6, sampler="random", seed=0, run_dir=tmp_path)
    assert len(calls) == 12 and again.to_records() == a.to_records()  # seed 0 again resumes its own study


@pytest.mark.parametrize("change, named", [
    ({"sampler": "tpe"}, r"sampler 'random', not 'tpe'"),
    ({"budgets": {"flops": 4e5}}, r"budget 'unconstrained', not 'flops<=400000'"),
    ({"objective": make_objective(SPACE, "additive", seed=3)}, r"objective 'callable .*synthetic pairwise noise=0 seed=3 "
                                                               r"cost_weight=1\]', not 'callable .*synthetic additive "),
    ({"sampler_args": {"max_draws": 50}}, r"sampler_args \{\}, not \{'max_draws': 50\}"),
    ({"start": [SPACE.smallest()]}, r"start None, not '[0-9a-f]{16} \(1 subnets\)'"),
])
def test_resuming_a_named_study_with_other_settings_is_an_error(change, named, tmp_path):
    search(SPACE, F, n_trials=4, sampler="random", study_name="mine", run_dir=tmp_path)
    before = _files(tmp_path)
    kwargs = {"objective": F, "n_trials": 4, "sampler": "random", "study_name": "mine", "run_dir": tmp_path, **change}
    objective = kwargs.pop("objective")
    with pytest.raises(ValueError, match=rf"study 'mine' in sqlite:///.*study.db was made with {named}.*"
                                         r"--study-name.*--new-study") as info:
        search(SPACE, objective, **kwargs)
    assert "\n" not in str(info.value) and _files(tmp_path) == before


def test_a_worker_with_its_own_seed_joins_a_named_study(tmp_path):
    calls, f = counted(F)
    search(SPACE, f, n_trials=4, sampler="random", seed=0, study_name="shared", run_dir=tmp_path)
    joined = search(SPACE, f, n_trials=8, sampler="random", seed=1, study_name="shared", run_dir=tmp_path)
    assert len(calls) == 8 == len(joined) and {r.seed for r in joined.records} == {0, 1}


def test_budgets_from_the_cli_are_separate_studies(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = ["search", "nb201_test", "--objective", "synthetic:additive", "--n-trials", "6", "--sampler", "random",
              "--no-progress"]
    assert main([*common, "--budget", "flops=5e5"]) == 0
    assert main([*common, "--budget", "params=3e4"]) == 0
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["nb201_test-synthetic-additive-flops-500000-seed0",
                       "nb201_test-synthetic-additive-params-30000-seed0"]
    second = SearchResult.load(tmp_path / "runs" / folders[1] / "search.json")
    assert len(second) == 6 and all(r.params <= 3e4 for r in second.records)
    assert second.settings["evaluated_before"] == {second.settings["study_name"]: 0}  # a study of its own
    capsys.readouterr()
    assert main([*common, "--budget", "flops=5e5"]) == 0  # the same command again says it resumes, with --no-progress too
    assert (f"study 'nb201_test-synthetic-additive-flops<=500000-seed0' (sqlite:///runs/{folders[0]}/study.db) "
            "already has 6 evaluated subnets >= n_trials 6") in capsys.readouterr().out


def test_fewer_trials_than_the_study_holds_reports_its_first_ones(tmp_path, capsys):
    calls, f = counted(F)
    whole = search(SPACE, f, n_trials=12, sampler="random", run_dir=tmp_path)
    first5 = search(SPACE, f, n_trials=5, sampler="random", run_dir=tmp_path, progress=True)
    out = capsys.readouterr().out
    assert len(calls) == 12  # nothing evaluated
    assert first5.to_records() == whole.to_records()[:5]
    name = whole.settings["study_name"]
    assert (f"study {name!r} (sqlite:///{tmp_path}/study.db) already has 12 evaluated subnets >= n_trials 5: "
            "nothing to evaluate; the result holds its first 5") in out
    more = search(SPACE, f, n_trials=15, sampler="random", run_dir=tmp_path, progress=True)
    out = capsys.readouterr().out
    assert len(calls) == 15 and len(more) == 15 and more.to_records()[:12] == whole.to_records()
    assert f"resuming study {name!r} (sqlite:///{tmp_path}/study.db): 12 subnets evaluated, 3 to go" in out


def test_new_study_starts_fresh_and_keeps_the_old_one(tmp_path):
    calls, f = counted(F)
    old = search(SPACE, f, n_trials=5, sampler="random", run_dir=tmp_path)
    new = search(SPACE, f, n_trials=5, sampler="tpe", run_dir=tmp_path, new_study=True)
    assert len(calls) == 10 and new.settings["study_name"] == old.settings["study_name"] + "-2"
    names = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path}/study.db")}
    assert names[old.settings["study_name"]] == 5 and old.settings["study_name"] + "-2" in names
    third = search(SPACE, f, n_trials=5, sampler="random", run_dir=tmp_path, new_study=True)
    assert third.settings["study_name"] == old.settings["study_name"] + "-3"


def test_a_changed_predictor_file_is_another_objective(tmp_path, rng):
    train = [SPACE.sample(rng) for _ in range(30)]
    path = tmp_path / "p.predictor"
    create_predictor("xgb", SPACE, seed=0, n_models=2, n_rounds=20).fit(train, [F(a) for a in train]).save(path)
    search(None, f"predictor:{path}", n_trials=4, sampler="random", study_name="p", run_dir=tmp_path)
    g = make_objective(SPACE, "additive", seed=9)
    create_predictor("xgb", SPACE, seed=0, n_models=2, n_rounds=20).fit(train, [g(a) for a in train]).save(path)
    with pytest.raises(ValueError, match=r"objective 'predictor file sha256=\w{16}', not 'predictor file sha256="):
        search(None, f"predictor:{path}", n_trials=4, sampler="random", study_name="p", run_dir=tmp_path)


@pytest.mark.parametrize("sampler", [None, "tpe"])
def test_a_budget_just_above_the_cheapest_subnet_finds_what_fits(sampler):
    space = get_space("mbv3_tiny")  # 1.5e10 subnets: random draws almost never land within this budget
    cheapest = space.smallest()
    limit = min(cost(b).flops for b in neighbours(cheapest))  # the cheapest subnet and its cheapest neighbour fit
    fits = {str(a) for a in [cheapest, *neighbours(cheapest)] if cost(a).flops <= limit}
    result = search(space, "synthetic:additive", budgets={"flops": limit}, sampler=sampler, n_trials=10)
    found = {str(r.arch) for r in result.records}
    assert len(fits) >= 2 and fits <= found
    assert all(r.flops <= limit for r in result.records)


def test_pareto_strategy_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    limits = [4e5, 8e5]
    rc = main(["search", "nb201_test", "--objective", "synthetic:pairwise", "--strategy", "pareto", "--budget",
               "flops=4e5,8e5", "--n-trials", "16", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "pareto front" in out
    (path,) = (tmp_path / "runs").glob("*/search.json")
    result = SearchResult.load(path)
    assert result.settings["strategy"] == "pareto" and result.settings["sampler"] == "tpe"
    assert len(result) == 16 and all(r.study.endswith("[pareto]") for r in result.records)
    assert all(r.flops <= max(limits) for r in result.records)  # the study is capped at the loosest budget
    recs = result.records
    for v in limits:  # best per budget: the best evaluated subnet that fits, by brute force
        best = result.best(flops=v)
        assert best.score == max(r.score for r in recs if r.flops <= v) and best.flops <= v
    brute = {str(r.arch) for r in recs if not any(o.flops <= r.flops and o.score >= r.score and
                                                   (o.flops < r.flops or o.score > r.score) for o in recs)}
    assert {str(r.arch) for r in result.pareto()} == brute
    saved = json.loads(path.read_text())
    assert [p["arch"] for p in saved["pareto"]] == [str(r.arch) for r in result.pareto()]


@pytest.mark.parametrize("content", [b"not json at all", b"[1, 2, 3]", b'{"records": []}', b"\xff\xfe\x00binary",
                                     b'{"format": "something-else"}'])
def test_loading_a_file_that_is_not_a_search_result_is_one_line(content, tmp_path):
    path = tmp_path / "foreign.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"foreign.json' is not a oneshot search result") as info:
        SearchResult.load(path)
    assert "\n" not in str(info.value) and path.read_bytes() == content
