"""`oneshot run [RECIPE]`: every phase of a recipe end to end (`oneshot.pipeline.run_pipeline`)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path
from typing import Any

from oneshot.pipeline import DEFAULT_RECIPE, PHASES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE,
                   help="recipe YAML or shipped recipe name (default: digits, the embedded default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=2 (repeatable)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"comma-separated phases to run, in pipeline order (default: all of {','.join(PHASES)})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs stay)")
    p.add_argument("--data-path", default=None,
                   help="where the checkpoint's dataset lives now, if it moved (the split digest is still checked)")


def run(args: argparse.Namespace) -> int:
    from oneshot.pipeline.run_folder import RunLock
    from oneshot.recipe import load_recipe, parse_overrides

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:  # before the lock, which creates the run folder
        raise ValueError(f"unknown phase(s) {unknown}; allowed: {list(PHASES)}")
    # run_pipeline takes this lock too (re-entrant in one process); taken here first, before the engine is imported
    # (torch, Lightning: seconds), a second command on a busy run folder is refused at once. The same owner text.
    with RunLock(recipe.run_dir, f"oneshot run ({','.join(p for p in PHASES if p in phases)})"):
        from oneshot.pipeline.phases import run_pipeline

        run_dir = run_pipeline(recipe, progress=not args.no_progress, phases=phases, data_path=args.data_path)
    report = run_dir / "report" / "report.md"
    if "report" in phases and report.is_file():
        print(f"\nreport: {_shown(report)}\nnext:")
        for command, what in next_commands(recipe, run_dir):
            print(f"  {command}\n      # {what}")
    return 0


def _shown(path: Path) -> str:
    """`path` as a user types it here: relative to the working folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _another_budget(recipe: Any, run_dir: Path) -> tuple[str, float]:
    """A budget the run did not search: between its two smallest limits (1.5x a single one), on the recipe's
    first count cost; FLOPs at the evaluated subnets' median when the recipe budgets something else (latency)."""
    from oneshot.study.budget import COST_KEYS

    budgets = dict(recipe.search.budgets)
    key = next(iter(budgets), "flops")
    limits = sorted(float(v) for v in (budgets[key] if isinstance(budgets.get(key), list) else [budgets.get(key)])
                    if v is not None) if key in budgets else []
    if key in COST_KEYS and limits:
        return key, (limits[0] + limits[1]) / 2 if len(limits) > 1 else 1.5 * limits[0]
    records = json.loads((run_dir / "evaluate.json").read_text())["records"]
    flops = sorted(r["flops"] for r in records)
    return "flops", float(flops[len(flops) // 2])


def next_commands(recipe: Any, run_dir: Path) -> list[tuple[str, str]]:
    """(command, what it does) for what a user types after a run: read the report, extract a subnet for a budget
    the run did not search, and the same search from Python. Each runs as printed (tested)."""
    from oneshot.pipeline.report import budget_text, short_number
    from oneshot.training.trainer import checkpoint_path

    key, limit = _another_budget(recipe, run_dir)
    value = short_number(limit)
    report, ckpt = _shown(run_dir / "report" / "report.md"), _shown(checkpoint_path(recipe))
    n_trials = max(4, recipe.search.n_trials // _n_studies(recipe))
    out = _shown(run_dir / f"search-{key}{value}")
    q = shlex.quote
    extract = (f"oneshot search {q(ckpt)} --budget {key}={value} --n-trials {n_trials} --run-dir {q(out)} && "
               f"oneshot extract {q(ckpt)} --search {q(os.path.join(out, 'search.json'))} --out "
               f"{q(os.path.join(out, 'subnets'))}")
    code = (f"from oneshot import search; r = search({json.dumps(ckpt)}, budgets={{{json.dumps(key)}: [{value}]}}, "
            f"n_trials={n_trials}, seed=0); print(r.best({key}={value}))")
    return [(f"less {q(report)}", f"read the report; its plots are the PNG files beside it"),
            (extract, f"search and extract a standalone subnet for another budget, {budget_text({key: limit})}"),
            (f"python -c {q(code)}", "the same search from Python (the study stays in memory; subnet scores are cached in "
             "evaluations.jsonl beside the checkpoint)")]


def _n_studies(recipe: Any) -> int:
    """How many budgets (studies) the recipe's search splits its subnets over: its longest list of limits."""
    values = dict(recipe.search.budgets).values()
    return max([len(v) if isinstance(v, (list, tuple)) else 1 for v in values] or [1])
