"""`import supernets, predictors` stays light: the heavy libraries load only where something needs them.

timm loads torchvision's whole model zoo (seconds), scipy.stats another second; every command paid both before
they moved into the functions that build a ViT / timm block or compute a statistic. The timings themselves are
in benchmarks/bench_import.py; these tests pin which modules an import loads, which cannot flake.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("timm", "torchvision", "scipy", "sklearn", "xgboost", "optuna", "lightning", "matplotlib", "pandas")


# Statements run in this order in one fresh process (torch is imported once, not once per test), with the top-level
# modules loaded after each: a later statement starts where the earlier ones left off, so each test asserts on what
# was loaded up to its own statement, and anything a statement loads is seen by its test and every later one.
STEPS = {
    "supernets": "import supernets, predictors",
    "search": "from oneshot.study.search import search\nfrom oneshot.console import progress_bar",
    "vit names": "from supernets import ViTNet, ViTSupernet, get_space, list_supernets\n"
                 "get_space('vit_test'); get_space('mbv3_tiny').smallest()",
}


@pytest.fixture(scope="module")
def loaded_after() -> dict[str, set[str]]:
    code = "import json, sys\nloaded = {}\n"
    for name, statement in STEPS.items():
        code += f"{statement}\nloaded[{name!r}] = sorted(m for m in sys.modules if '.' not in m)\n"
    code += "print(json.dumps(loaded))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return {name: set(modules) for name, modules in json.loads(r.stdout.splitlines()[-1]).items()}


def test_importing_supernets_and_predictors_loads_no_heavy_library(loaded_after) -> None:
    loaded = loaded_after["supernets"]
    assert {"supernets", "predictors", "torch"} <= loaded  # the check sees what was imported
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_search_loads_no_lightning(loaded_after) -> None:
    """A search on a table or a predictor (and every storage worker) needs Optuna, not Lightning's training stack
    (Lightning loads torchmetrics, torchvision and scipy: seconds per process)."""
    loaded = loaded_after["search"]
    assert "optuna" in loaded and "oneshot" in loaded
    assert loaded.isdisjoint(set(HEAVY) - {"optuna"}), sorted(loaded & set(HEAVY))


def test_public_names_still_import_and_a_vit_still_builds_with_timm_layers(loaded_after) -> None:
    loaded = loaded_after["vit names"]
    assert "timm" not in loaded  # naming and spacing a ViT needs no timm; building one does (below)
    from supernets import ViTNet, create_supernet, extract

    sup = create_supernet("vit_test")
    net = extract(sup, sup.space.smallest())
    assert isinstance(net, ViTNet)
    assert type(net.blocks[0]).__module__.startswith("timm.")  # still timm's Block, Attention and Mlp


def test_mbv3_helpers_equal_timms() -> None:
    """`make_divisible` and the activation names were taken from timm: same numbers, same torch classes."""
    timm_layers = pytest.importorskip("timm.layers")
    from supernets import mbv3

    for divisor in (4, 8, 16):
        for v in [x / 4 for x in range(1, 1200)]:
            assert mbv3._make_divisible(v, divisor) == timm_layers.make_divisible(v, divisor), (v, divisor)
    for name, cls in mbv3._TORCH_ACTS.items():
        assert timm_layers.get_act_layer(name) is cls, name
    assert type(mbv3._act("gelu")) is timm_layers.get_act_layer("gelu")  # other names still go to timm


def test_commands_refusing_a_busy_run_folder_or_a_bad_manifest_load_no_torch(tmp_path) -> None:
    """Refusals answer before the engine loads (torch alone is seconds per command): a run folder in use by another
    process (`oneshot run`, `oneshot train`, a recipe phase), a manifest naming a file outside its folder (`oneshot
    retrain`, `oneshot extract --overwrite`), a missing search result. The refusals' wording is tested with real
    processes in test_run_lock.py and test_bad_input_round3.py; this pins that no torch was needed for them."""
    import yaml

    from conftest import TINY_RECIPE
    from oneshot.pipeline.run_folder import RunLock

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({**TINY_RECIPE, "output_dir": str(tmp_path / "runs")}))
    subnets = tmp_path / "subnets"
    subnets.mkdir()
    (subnets / "manifest.json").write_text(json.dumps({"space": "mbv3_test", "subnets": [
        {"name": "a", "file": "../victim.txt", "arch": "x"}]}))
    ckpt = tmp_path / "supernet.ckpt"
    ckpt.write_bytes(b"not read: the manifest is refused first")
    commands = [["run", str(recipe), "--phases", "predict"], ["train", str(recipe)], ["evaluate", str(recipe)],
                ["retrain", str(subnets)], ["extract", str(ckpt), "--arch", "x", "--out", str(subnets), "--overwrite"],
                ["extract", str(ckpt), "--search", str(tmp_path / "nothere.json")]]
    code = ("import sys, json\nfrom oneshot.cli.main import main\n"
            f"codes = [main(argv) for argv in {commands!r}]\n"
            "print(json.dumps([codes, 'torch' in sys.modules]))")
    with RunLock(tmp_path / "runs" / "tiny", "the test"):  # held by this process: the commands' process is refused
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    codes, torch_loaded = json.loads(r.stdout.splitlines()[-1])
    assert codes == [2] * len(commands), r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("oneshot ")]
    assert [ln.split(":")[0] for ln in errors] == [f"oneshot {c[0]}" for c in commands], r.stderr
    assert sum("is in use by `the test`" in ln for ln in errors) == 3 and "lies outside the folder" in errors[3]
    assert "lies outside the folder" in errors[4] and "does not exist" in errors[5], errors
    assert not torch_loaded
