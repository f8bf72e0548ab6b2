"""Every command and code block in README.md and in every page of docs/ runs as written (issue 12 §5, issue 21).

Pages run in `PAGES` order, README first (every docs/*.md must be listed there). Their ```bash blocks run each as
one bash script (`set -euo pipefail`), and their ```python blocks run in order, in one temp folder that holds
`recipes/` with copies of the shipped recipes and tiny settings written over them (a bare `oneshot run` reads
`./recipes/digits.yaml` first: `oneshot.recipe.resolve_recipe_path`). The quickstart's `oneshot run` runs first and
every page starts from the run folder it leaves, as a reader who did the quickstart would. Shell blocks run before
Python blocks, since the Python blocks use the run folder the commands leave. The Python blocks of one page share
one namespace, cumulatively, in page order, as a reader pasting them into one session would; each page starts a
fresh namespace (one interpreter for all), so a page never leans on another page's variables.

A block whose first line is `# needs: VAR` needs an external file named by the environment variable VAR (the
NAS-Bench-Macro table, CIFAR-10); it is skipped when VAR is unset or names no existing path. With both
NAS_BENCH_MACRO and CIFAR10_DIR set, the fidelity block scores its 200 subnets: tens of minutes on a CPU.
The quickstart's `pip install` is not run; the quickstart must be exactly two commands, the second being the test
command `.ci/run` runs (that one is not run here: it is this suite).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# README first, then the docs in the order its "Where to go next" lists them.
PAGES = [README] + [ROOT / "docs" / f"{name}.md" for name in (
    "pipeline", "spaces", "training", "predictors", "search", "benchmarks", "deployment", "scaling-out", "failures",
    "measured-figures", "data-and-install", "layout", "your-own-network")]

# Tiny settings written over each shipped recipe the README runs: seconds per phase on a CPU.
_TINY_DATA = {"max_train_samples": 96, "max_eval_samples": 48, "batch_size": 32}
_TINY_TRAIN = {"epochs": 1, "threads": 1, "accelerator": "cpu"}
TINY = {
    "digits": {
        "data": _TINY_DATA, "train": _TINY_TRAIN,
        "evaluate": {"num_subnets": 10, "calib_batches": 1, "calib_batch_size": 32, "batch_size": 48},
        "predict": {"folds": 2},
        "search": {"n_trials": 6},
        "retrain": {"epochs": 1, "extra_subnets": 1},
    },
}
# A ViT trained 1 epoch on 96 images scores every subnet alike, and predictors refuse constant scores.
TINY["vit_digits"] = {
    **TINY["digits"], "data": {**_TINY_DATA, "max_train_samples": 384, "max_eval_samples": 96},
    "train": {**_TINY_TRAIN, "epochs": 2},
    "evaluate": {**TINY["digits"]["evaluate"], "num_subnets": 16},
}
TINY["macro_cifar10"] = {"data": _TINY_DATA, "train": _TINY_TRAIN}
# Recipes a page writes as files (docs/your-own-network.md), shrunk the same way when the test writes them.
TINY["mynet"] = TINY["digits"]
TINY["mynet_dm"] = {"data": _TINY_DATA, "train": _TINY_TRAIN, "evaluate": TINY["digits"]["evaluate"]}


def _blocks(lang: str, page: Path = README) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", page.read_text(), flags=re.S | re.M)


def _files(page: Path) -> list[tuple[str, str]]:
    """Blocks that show a file the reader saves (an info string such as ```python file=mynet.py): (name, text).
    They are written into the work folder before the page's commands run, and are not run themselves."""
    return re.findall(r"^```\w+ file=(\S+)\n(.*?)^```", page.read_text(), flags=re.S | re.M)


def _write_files(page: Path, workdir: Path) -> None:
    for name, text in _files(page):
        path = workdir / name
        if path.suffix == ".yaml" and path.stem in TINY:  # a recipe: tiny settings over it, as for recipes/
            text = yaml.safe_dump(_deep_merge(yaml.safe_load(text), TINY[path.stem]))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _needs(block: str) -> list[str]:
    """The environment variables a block needs (`# needs: VAR [VAR...]` on its first line)."""
    m = re.match(r"#[ \t]*needs:((?:[ \t]+\w+)+)", block.lstrip())
    return m.group(1).split() if m else []


def _available(names: list[str]) -> bool:
    return all(os.environ.get(v) and (v.endswith("_URL") or Path(os.environ[v]).exists()) for v in names)


def _commands(block: str) -> list[str]:
    """Shell commands of a block: comment lines dropped, `\\`-continued lines joined."""
    text = re.sub(r"\\\n\s*", " ", block)
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(base.get(k) or {}, v) if isinstance(v, dict) else v
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    (d / "recipes").mkdir()
    for src in (ROOT / "recipes").glob("*.yaml"):
        recipe = yaml.safe_load(src.read_text())
        (d / "recipes" / src.name).write_text(yaml.safe_dump(_deep_merge(recipe, TINY.get(src.stem, {}))))
    return d


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _quickstart() -> list[str]:
    return _commands(_blocks("bash")[0])


def test_every_docs_page_is_run() -> None:
    """A page added to docs/ without a place in PAGES would go untested."""
    assert sorted(PAGES[1:]) == sorted((ROOT / "docs").glob("*.md"))


def test_quickstart_is_two_commands_and_ci_runs_the_second() -> None:
    first, second = _quickstart()  # exactly two
    assert first.split("&&")[-1].strip() == "oneshot run"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert second.strip() in ci, "the README's test command is one that .ci/run runs"


def _run_shell(command: str, cwd: Path) -> None:
    start = time.monotonic()
    r = subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}"], cwd=cwd, env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"README command failed ({r.returncode}): {command}\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    print(f"{time.monotonic() - start:6.1f} s  {command.splitlines()[0][:80]}")  # shown with -s: where time goes


@pytest.mark.readme  # minutes of CLI start-ups: .ci/run runs it as its own step, after the suite
def test_readme_commands_and_python_blocks(workdir: Path) -> None:
    bash = _blocks("bash")
    assert len(bash) >= 2 and _blocks("python"), "README lost its code blocks"
    # The quickstart's first command, without its installation; the second (the test suite) is this suite.
    _run_shell("oneshot run", workdir)
    skipped = []
    for page in PAGES:
        _write_files(page, workdir)
        for block in bash[1:] if page == README else _blocks("bash", page):
            if not _available(_needs(block)):
                skipped += _needs(block)
                continue
            _run_shell(block, workdir)  # the whole block as one script: `&`, `wait` and variables work as written

    # One interpreter, a fresh namespace per page, blocks in page order; a block's failure names page and block.
    script = ["import sys, time, traceback"]
    for page in PAGES:
        name = page.relative_to(ROOT).as_posix()
        script.append("ns = {}")
        for i, block in enumerate(_blocks("python", page)):
            if not _available(_needs(block)):
                skipped += _needs(block)
                continue
            script.append(f"t = time.monotonic()\n"
                          f"try:\n    exec(compile({block!r}, '{name} python block {i}', 'exec'), ns)\n"
                          f"except Exception:\n    traceback.print_exc()\n"
                          f"    sys.exit('{name} python block {i} failed:\\n' + {block[:300]!r})\n"
                          f"print(f'{{time.monotonic() - t:6.1f}} s  {name} python block {i}', file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", "\n".join(script)], cwd=workdir, env=_env(), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, f"{r.stdout[-3000:]}{r.stderr[-5000:]}"
    print("\n".join(line for line in r.stderr.splitlines() if " python block " in line))
    if skipped:
        print(f"README blocks skipped (external files not set): {sorted(set(skipped))}")


def test_flat_api_names_are_the_functions_and_import_is_cheap() -> None:
    """`from oneshot import train` is the function even after the stage folder `oneshot/training/` was imported
    (no public name is also a folder), and `import oneshot` loads no torch (the CLI starts fast)."""
    # Only the cheap import needs a fresh process (nothing loaded yet); the names are checked here, after the stage
    # modules were imported (they set their package attributes on import, in any process: a name shadowed by a
    # folder shows the same here), which spares a second process importing the whole engine (~10 s of CPU).
    code = "import sys, oneshot\nassert 'torch' not in sys.modules, sorted(sys.modules)\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    import types

    import oneshot
    import oneshot.deploy.extract  # noqa: F401
    import oneshot.training.trainer
    from oneshot import train

    assert train is oneshot.training.trainer.train and oneshot.train is oneshot.training.trainer.train
    for name in oneshot._LAZY:
        assert not isinstance(getattr(oneshot, name), types.ModuleType), name
        assert getattr(oneshot, name) is getattr(importlib.import_module(oneshot._LAZY[name]), name), name


def test_a_bare_recipe_name_prefers_the_working_folders_recipes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What lets this test (and a user's project) run `oneshot run` on its own `recipes/digits.yaml`."""
    from oneshot.recipe import RECIPES_DIR, resolve_recipe_path

    monkeypatch.chdir(tmp_path)
    assert resolve_recipe_path("digits") == RECIPES_DIR / "digits.yaml"  # none here: the shipped one
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "digits.yaml").write_text("name: mine\n")
    assert resolve_recipe_path("digits").resolve() == (tmp_path / "recipes" / "digits.yaml").resolve()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_lead_somewhere() -> None:
    """Every relative link of the README and the docs names a file that exists and, with `#`, one of its headings:
    the README is short because it points into docs/, so a broken pointer loses the reader."""
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                prose = re.sub(r"^```.*?^```", "", file.read_text(), flags=re.S | re.M)  # `# comments` are no headings
                headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", prose, flags=re.M)}
                if anchor not in headings:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
