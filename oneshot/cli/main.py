"""The `oneshot` command: one sub-command per phase, each in its own module of `oneshot.cli` with `add_arguments`
(argument definitions only, so `oneshot --help` starts without torch) and `run` (which imports the engine)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# sub-command -> module providing `add_arguments(parser)` and `run(args) -> int`, plus a one-line help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("oneshot.cli.run", "run every phase of a recipe end to end (default: recipes/digits.yaml)"),
    "train": ("oneshot.cli.train", "train a supernet from a recipe"),
    "evaluate": ("oneshot.cli.evaluate", "score subnets of a checkpoint on the holdout split"),
    "predict": ("oneshot.cli.predict", "fit and cross-validate accuracy predictors on evaluations"),
    "search": ("oneshot.cli.search", "budgeted Optuna search over a space"),
    "extract": ("oneshot.cli.extract", "extract subnets from a checkpoint into standalone files"),
    "latency": ("oneshot.cli.latency", "time subnets on a device and fit the latency model that latency budgets use"),
    "retrain": ("oneshot.cli.retrain", "retrain subnets standalone and report the proxy-to-real gap"),
    "proxies": ("oneshot.cli.proxies", "score subnets with zero-cost proxies into a cached table (no training)"),
    "fidelity": ("oneshot.cli.fidelity", "rank agreement of a supernet with a tabular benchmark's ground truth"),
    "calibrate": ("oneshot.cli.calibrate", "fit the search estimate on standalone truths with every signal as input"),
}


# Phases that also run from a recipe (`oneshot search recipes/digits.yaml`): the same step as inside `oneshot run`,
# reading what earlier phases left in the recipe's run folder. `train` takes a recipe already.
RECIPE_PHASES = ("evaluate", "predict", "calibrate", "search", "extract", "retrain")


class UserError(Exception):
    """An error caused by the user's input: printed as one clear line, no traceback."""


def _is_recipe(arg: str) -> bool:
    """A YAML file, or the name of a shipped recipe (`digits`) that is not also a file here (a checkpoint)."""
    from pathlib import Path

    from oneshot.recipe import RECIPES_DIR  # YAML only: no engine import

    if arg.endswith((".yaml", ".yml")):
        return True
    return not Path(arg).exists() and (RECIPES_DIR / f"{arg}.yaml").is_file()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oneshot", description="One-shot neural architecture search.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        desc = help_text
        if name in RECIPE_PHASES:
            desc += (f". Also `oneshot {name} RECIPE [--set KEY=VALUE]` (a YAML file or a shipped recipe name): this "
                     "phase of `oneshot run`, from the "
                     "recipe's run folder")
        p = sub.add_parser(name, help=help_text, description=desc)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=module)
            continue
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch/OpenMP start
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["run"]
    parser = build_parser()
    if len(argv) > 1 and argv[0] in RECIPE_PHASES and _is_recipe(argv[1]):
        phase = argv[0]
        args, unknown = parser.parse_known_args(["run", argv[1], "--phases", phase, *argv[2:]])
        if unknown:
            parser.error(f"oneshot {phase} RECIPE takes its settings from the recipe: override them with --set "
                         f"KEY=VALUE (e.g. --set search.n_trials=30), not {' '.join(unknown)}")
        args.command = phase
    else:
        args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        parser.error(f"command {args.command!r} is not available in this build ({args._missing} missing)")
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as exc:
        print(f"oneshot {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only folder, a file where a folder goes, a folder where a file goes, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"oneshot {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"oneshot {args.command}: interrupted; finished work is saved and the next run resumes", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:  # out of memory: say which memory and the setting that lowers it
        from oneshot.messages import out_of_memory

        line = out_of_memory("run" if hasattr(args, "phases") else args.command, exc)
        if line is None:
            raise
        print(f"oneshot {args.command}: error: {line}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """The message of `exc` on one line (FileNotFoundError from open() carries errno, strerror and filename), with
    echoed input cut to a readable length."""
    from oneshot.messages import clip_message

    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return clip_message(f"{exc.filename}: {exc.strerror}")
    return clip_message(str(exc))


if __name__ == "__main__":
    sys.exit(main())
