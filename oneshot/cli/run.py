"""`oneshot run [RECIPE]`: every phase of a recipe end to end (`oneshot.pipeline.run_pipeline`)."""

from __future__ import annotations

import argparse

from oneshot.pipeline import DEFAULT_RECIPE, PHASES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE,
                   help="recipe YAML or shipped recipe name (default: digits, the embedded default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=2 (repeatable)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"comma-separated phases to run, in pipeline order (default: all of {','.join(PHASES)})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs stay)")


def run(args: argparse.Namespace) -> int:
    from oneshot.pipeline.phases import run_pipeline
    from oneshot.recipe import load_recipe, parse_overrides

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    run_pipeline(recipe, progress=not args.no_progress, phases=[p.strip() for p in args.phases.split(",") if p.strip()])
    return 0
