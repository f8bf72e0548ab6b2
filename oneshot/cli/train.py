"""`oneshot train RECIPE`: train a supernet from a recipe (`oneshot.training.trainer.train`).

Exactly the train phase of `oneshot run`: it continues the run's checkpoint when there is one (and does nothing
when that one is complete); `--overwrite` trains from scratch and replaces it.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file, or the name of a shipped recipe (e.g. digits)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set train.epochs=2 (values are read as YAML)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run's checkpoint if there is one (the default; kept for old scripts)")
    parser.add_argument("--overwrite", action="store_true",
                        help="train from scratch; the run's checkpoint, if there is one, is replaced at the first save")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from oneshot.pipeline.run_folder import RunLock
    from oneshot.recipe import load_recipe, parse_overrides

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the checkpoint, --overwrite replaces it: give one")
    with RunLock(recipe.run_dir, "oneshot train"):  # one trainer per checkpoint: a second is refused, naming it
        return _train(recipe, args)


def _train(recipe: Any, args: argparse.Namespace) -> int:
    from oneshot.pipeline.run_folder import record_phase
    from oneshot.training.trainer import checkpoint_path, train

    start = time.perf_counter()
    existed = checkpoint_path(recipe).is_file() and not args.overwrite
    path = train(recipe, resume=True, overwrite=args.overwrite, progress=not args.no_progress)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        seconds = time.perf_counter() - start
        # the run's report shows compute per phase: this run is added to the earlier ones (replaces them: --overwrite)
        record_phase(recipe.run_dir, "train", seconds, resumed=existed, replace=args.overwrite)
        print(f"supernet checkpoint: {path}  ({seconds:.1f} s{', resumed' if existed else ''})")
    return 0
