"""Off the happy path, round 3 (issue 22), as a table: each case runs the CLI in this process and must exit with
the stated code, print exactly one line `oneshot CMD: error: ...` naming the problem (no traceback), and leave
every file of the workspace as it was (hashed before and after). Behaviour that has to succeed (merge keys,
`${VAR}` paths, adopting an orphan subnet file, torn-line notes, masked secrets) is tested after the table."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_RECIPE, image_folder
from oneshot.cli import main
from oneshot.deploy.extract import extract_subnets, read_manifest
from oneshot.recipe import Recipe, load_recipe
from oneshot.table import ResultTable, read_table
from oneshot.training.checkpoint import load_supernet
from supernets import get_space
from supernets.sampling import sample_distinct

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|log_every_n_steps|num_workers).*")

SPACE = get_space("mbv3_test")
SMALLEST = str(SPACE.smallest())
HUGE_ARCH = "k3e2/" * 2_000_000  # a 10 MB line


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*")) if not p.is_symlink()}


def _manifest_with(folder: Path, file: str) -> None:
    """A manifest of a real extraction whose one entry is edited to name `file`."""
    data = json.loads((folder / "manifest.json").read_text())
    data["subnets"][0]["file"] = file
    (folder / "manifest.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint: Path) -> Path:
    w = tmp_path_factory.mktemp("round3")
    (w / "supernet.ckpt").write_bytes(tiny_checkpoint.read_bytes())
    (w / "victim.txt").write_text("the user's own file\n")
    # subnet folders whose manifests name files outside them
    extract_subnets(w / "supernet.ckpt", [{"arch": SMALLEST, "name": "a"}], w / "good", calib_batches=1)
    for name, file in (("dotdot", "../victim.txt"), ("deep", "../../victim.txt"), ("absolute", str(w / "victim.txt")),
                       ("onnx", None)):
        shutil.copytree(w / "good", w / name)
        if file is not None:
            _manifest_with(w / name, file)
    data = json.loads((w / "onnx" / "manifest.json").read_text())
    data["subnets"][0]["onnx"] = "../victim.txt"
    (w / "onnx" / "manifest.json").write_text(json.dumps(data))
    (w / "link").mkdir()
    shutil.copy(w / "good" / "manifest.json", w / "link" / "manifest.json")
    (w / "link" / json.loads((w / "good" / "manifest.json").read_text())["subnets"][0]["file"]).symlink_to(
        w / "victim.txt")
    # recipes
    (w / "empty.yaml").write_text("")
    (w / "comments.yaml").write_text("# nothing but a comment\n")
    runs = w / "runs"
    recipe = {**TINY_RECIPE, "output_dir": str(runs)}
    (w / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    # a run folder whose extract phase ran once, then whose manifest was edited to point outside
    run = runs / "tiny"
    run.mkdir(parents=True)
    (run / "supernet.ckpt").write_bytes(tiny_checkpoint.read_bytes())
    (run / "search").mkdir()
    (run / "search" / "chosen.json").write_text(json.dumps({"chosen": [
        {"name": "flops_1e+06", "arch": SMALLEST, "budget_key": "flops", "budget": 1e6, "limits": {"flops": 1e6},
         "search_score": 0.5}]}))
    assert main(["run", str(w / "tiny.yaml"), "--phases", "extract", "--no-progress",
                 "--set", "evaluate.calib_batches=1"]) == 0
    _manifest_with(run / "subnets", "../../../victim.txt")
    # result tables: a record duplicated with another value, on lines 3 and 5
    space = load_supernet(w / "supernet.ckpt")[0].space  # the checkpoint's (8 px images): evaluate opens it
    archs = sample_distinct(space, 12, np.random.default_rng(0))
    t = ResultTable(w / "dup.jsonl", space)
    for i, a in enumerate(archs):
        t.add({"key": f"k{i}", "arch": str(a), "holdout_acc": 0.05 * i})
    lines = (w / "dup.jsonl").read_text().splitlines(keepends=True)
    lines.insert(4, json.dumps({**json.loads(lines[2]), "holdout_acc": 0.99}) + "\n")
    (w / "dup.jsonl").write_text("".join(lines))
    # arch files
    (w / "bad_arch.txt").write_text(f"# two subnets\n{SMALLEST}\nk3e2/k9e2\n")
    (w / "huge_arch.txt").write_text(HUGE_ARCH + "\n")
    return w


# (id, argv with {w} = the workspace, exit code, text the one line must contain)
CASES = [
    # 1 and 7: stored file names that lead out of their folder
    ("extract-overwrite-dotdot", ["extract", "{w}/supernet.ckpt", "--arch", SMALLEST, "--out", "{w}/dotdot",
                                  "--overwrite", "--calib-batches", "1"], 2, "lies outside the folder"),
    ("extract-overwrite-absolute", ["extract", "{w}/supernet.ckpt", "--arch", SMALLEST, "--out", "{w}/absolute",
                                    "--overwrite", "--calib-batches", "1"], 2, "lies outside the folder"),
    ("extract-onnx-key-outside", ["extract", "{w}/supernet.ckpt", "--arch", SMALLEST, "--out", "{w}/onnx",
                                  "--overwrite", "--format", "onnx", "--calib-batches", "1"], 2,
     "'../victim.txt' lies outside"),
    ("retrain-manifest-dotdot", ["retrain", "{w}/deep", "--epochs", "1"], 2, "lies outside the folder"),
    ("retrain-manifest-absolute", ["retrain", "{w}/absolute", "--epochs", "1"], 2, "lies outside the folder"),
    ("retrain-symlink-out", ["retrain", "{w}/link", "--epochs", "1"], 2, "victim.txt', which lies outside the folder"),
    ("run-extract-phase-manifest-outside", ["run", "{w}/tiny.yaml", "--phases", "extract", "--no-progress",
                                            "--set", "evaluate.calib_batches=1"], 2, "lies outside the folder"),
    ("run-retrain-phase-manifest-outside", ["run", "{w}/tiny.yaml", "--phases", "retrain", "--no-progress",
                                            "--set", "evaluate.calib_batches=1"], 2, "lies outside the folder"),
    # 5: empty recipes, `$` in path values
    ("run-empty-recipe", ["run", "{w}/empty.yaml"], 2, "is empty"),
    ("train-comment-only-recipe", ["train", "{w}/comments.yaml"], 2, "is empty"),
    ("run-unset-variable-in-output-dir", ["run", "{w}/tiny.yaml", "--set", "output_dir=${ONESHOT_TEST_UNSET}/x"], 2,
     "output_dir refers to the environment variable ONESHOT_TEST_UNSET, which is not set"),
    ("train-stray-dollar-in-data-path", ["train", "{w}/tiny.yaml", "--set", "data.path=/data/$"], 2,
     "recipe value data.path: a '$' that starts no ${NAME} reference"),
    # 6: a key on two lines with different results
    ("predict-conflicting-duplicate", ["predict", "fit", "{w}/dup.jsonl"], 2, "lines 3 and 5 both hold subnet"),
    ("evaluate-conflicting-duplicate", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/dup.jsonl",
                                        "--num-subnets", "1"], 2, "lines 3 and 5 both hold subnet"),
    # smaller: line numbers, echoed input cut, --data-path reaching the data
    ("extract-bad-arch-names-its-line", ["extract", "{w}/supernet.ckpt", "--archs", "{w}/bad_arch.txt"], 2,
     "bad_arch.txt' line 3"),
    ("extract-10mb-arch-line", ["extract", "{w}/supernet.ckpt", "--archs", "{w}/huge_arch.txt"], 2,
     "more characters)"),
    ("extract-10mb-arch-argument", ["extract", "{w}/supernet.ckpt", "--arch", HUGE_ARCH], 2, "more characters)"),
    ("evaluate-10mb-arch-line", ["evaluate", "{w}/supernet.ckpt", "--archs", "{w}/huge_arch.txt"], 2,
     "more characters)"),
    ("extract-data-path-reaches-the-data", ["extract", "{w}/supernet.ckpt", "--arch", SMALLEST, "--out", "{w}/new",
                                            "--data-path", "{w}/elsewhere"], 2, "digits is embedded"),
    ("search-data-path-reaches-the-data", ["search", "{w}/supernet.ckpt", "--n-trials", "2", "--run-dir", "{w}/s",
                                           "--data-path", "{w}/elsewhere"], 2, "digits is embedded"),
    ("retrain-data-path-reaches-the-data", ["retrain", "{w}/good", "--epochs", "1", "--data-path", "{w}/elsewhere"],
     2, "digits is embedded"),
    # 8: a read-only storage
    ("search-read-only-sqlite", ["search", "nb201_test", "--objective", "synthetic:additive", "--n-trials", "3",
                                 "--run-dir", "{w}/ro", "--storage",
                                 "sqlite:///file:{w}/ro.db?mode=ro&uri=true"], 2, "read-only"),
]


@pytest.mark.parametrize("argv, code, problem", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(workspace: Path, argv, code, problem, capsys) -> None:
    if "ro.db" in " ".join(argv) and not (workspace / "ro.db").exists():
        from oneshot.study.search import search
        from predictors.synthetic import make_objective

        space = get_space("nb201_test")  # a real study, opened read-only by the case
        search(space, make_objective(space, "additive", seed=0), n_trials=2, storage=f"sqlite:///{workspace}/ro.db",
               study_name="nb201_test-synthetic-additive-unconstrained-seed0")
    args = [a.replace("{w}", str(workspace)) for a in argv]
    before = _snapshot(workspace)
    assert main(args) == code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith(f"oneshot {argv[0]}: error: "), err[:2000]
    assert problem in lines[0], lines[0][:2000]
    assert len(lines[0]) < 1200  # echoed input is cut: never the 10 MB line
    assert _snapshot(workspace) == before  # no file changed, none added (the victim least of all)
    assert (workspace / "victim.txt").read_text() == "the user's own file\n"


# --------------------------------------------------------------------------- 9: out of memory at the boundary
@pytest.mark.parametrize("error, memory", [
    (lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out of GPU memory"),
    (lambda: MemoryError(), "out of host memory"),
    (lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you "
                          "tried to allocate 4294967296 bytes"), "out of host memory"),
])
def test_out_of_memory_in_evaluate_says_what_ran_out_and_what_lowers_it(workspace, monkeypatch, capsys, error,
                                                                         memory) -> None:
    import oneshot.score.evaluate

    def evaluate(*args, **kwargs):
        raise error()

    monkeypatch.setattr(oneshot.score.evaluate, "evaluate", evaluate)
    before = _snapshot(workspace)
    assert main(["evaluate", str(workspace / "supernet.ckpt"), "--num-subnets", "2", "--table",
                 str(workspace / "oom.jsonl")]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"oneshot evaluate: error: {memory}")
    assert "--batch-size" in lines[0] and "--calib-batch-size" in lines[0]
    assert _snapshot(workspace) == before


def test_other_runtime_errors_are_not_taken_for_out_of_memory(workspace, monkeypatch) -> None:
    import oneshot.score.evaluate

    def evaluate(*args, **kwargs):
        raise RuntimeError("something else broke")

    monkeypatch.setattr(oneshot.score.evaluate, "evaluate", evaluate)
    with pytest.raises(RuntimeError, match="something else broke"):
        main(["evaluate", str(workspace / "supernet.ckpt"), "--num-subnets", "2"])


# --------------------------------------------------------------------------- what has to work
def test_yaml_merge_keys_are_standard_yaml(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "train:\n  epochs: 2\n  optimizer: &sgd {name: SGD, lr: 0.1, momentum: 0.9}\n"
        "retrain:\n  optimizer:\n    <<: *sgd\n    lr: 0.01\n")
    r = load_recipe(tmp_path / "r.yaml")
    assert r.retrain.optimizer == {"name": "SGD", "lr": 0.01, "momentum": 0.9}  # written keys override merged ones
    (tmp_path / "twice.yaml").write_text("train:\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(ValueError, match="'epochs' appears twice"):
        load_recipe(tmp_path / "twice.yaml")


def test_environment_variables_in_path_values_are_expanded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ONESHOT_TEST_SCRATCH", str(tmp_path / "scratch"))
    r = Recipe.from_dict({"output_dir": "${ONESHOT_TEST_SCRATCH}/runs", "data": {"name": "cifar10",
                                                                               "path": "$ONESHOT_TEST_SCRATCH/c$$"}})
    assert r.output_dir == f"{tmp_path}/scratch/runs" and r.data.path == f"{tmp_path}/scratch/c$"


def test_storage_password_is_never_saved_and_a_reference_stays_a_reference(monkeypatch) -> None:
    r = Recipe.from_dict({"search": {"storage": "postgresql+psycopg://u:S3CRET@db.example/oneshot"}})
    assert r.search.storage.endswith("S3CRET@db.example/oneshot")  # used as given at run time
    saved = json.dumps(r.to_dict())
    assert "S3CRET" not in saved and "postgresql+psycopg://u:***@db.example/oneshot" in saved
    ref = Recipe.from_dict({"search": {"storage": "${ONESHOT_STORAGE}"}})
    assert ref.to_dict()["search"]["storage"] == "${ONESHOT_STORAGE}"  # expanded only when the storage opens
    from oneshot.study.storage import open_storage

    monkeypatch.setenv("ONESHOT_TEST_DB", "memory")
    assert open_storage("${ONESHOT_TEST_DB}")[1] == "memory"
    monkeypatch.delenv("ONESHOT_TEST_DB")
    with pytest.raises(ValueError, match="ONESHOT_TEST_DB, which is not set"):
        open_storage("${ONESHOT_TEST_DB}")


def test_torn_last_line_is_reported_with_its_line_number(workspace: Path, tmp_path: Path, capsys) -> None:
    table = tmp_path / "torn.jsonl"
    t = ResultTable(table, SPACE)
    for i, a in enumerate(sample_distinct(SPACE, 12, np.random.default_rng(1))):
        t.add({"key": f"k{i}", "arch": str(a), "holdout_acc": 0.05 * i})
    with open(table, "a") as f:
        f.write('{"key": "k99", "arch": "k3')  # a crash mid-write: line 14
    capsys.readouterr()
    assert len(read_table(table)[1]) == 12
    assert "line 14 is torn" in capsys.readouterr().err
    assert main(["predict", "fit", str(table), "--out", str(tmp_path / "p.predictor")]) == 0
    assert "line 14 is torn" in capsys.readouterr().err
    ev = tmp_path / "ev.jsonl"
    assert main(["evaluate", str(workspace / "supernet.ckpt"), "--archs", str(workspace / "bad_arch.txt"),
                 "--table", str(ev), "--calib-batches", "1"]) == 2  # line 3 is bad: nothing evaluated
    main(["evaluate", str(workspace / "supernet.ckpt"), "--num-subnets", "1", "--table", str(ev), "--calib-batches",
          "1", "--no-progress"])
    with open(ev, "a") as f:
        f.write('{"key": "x", "ar')
    capsys.readouterr()
    assert main(["evaluate", str(workspace / "supernet.ckpt"), "--num-subnets", "1", "--table", str(ev),
                 "--calib-batches", "1", "--no-progress"]) == 0
    assert "line 3 is torn" in capsys.readouterr().err


def test_same_record_twice_is_fine(tmp_path: Path) -> None:
    """The same result on two lines (a subnet evaluated again after a lost claim) is one record, timings aside."""
    t = ResultTable(tmp_path / "t.jsonl", SPACE)
    t.add({"key": "a", "arch": SMALLEST, "holdout_acc": 0.5, "eval_seconds": 1.0})
    t.add({"key": "a", "arch": SMALLEST, "holdout_acc": 0.5, "eval_seconds": 2.0})
    # a later line adding fields (a proxy table scoring more proxies for a subnet) updates the record
    t.add({"key": "a", "arch": SMALLEST, "holdout_acc": 0.5, "synflow": 3.0})
    assert read_table(tmp_path / "t.jsonl")[1] == [{"key": "a", "arch": SMALLEST, "holdout_acc": 0.5,
                                                    "synflow": 3.0}]


def test_orphan_subnet_file_of_an_interrupted_extract_is_adopted(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "subnets"
    shutil.copytree(workspace / "good", out)
    (out / "manifest.json").unlink()  # as if interrupted after the file and before the manifest
    before = _snapshot(out)
    lines: list[str] = []
    extract_subnets(workspace / "supernet.ckpt", [{"arch": SMALLEST, "name": "a"}], out, calib_batches=1,
                    log=lines.append)
    folder, entries = read_manifest(out)
    assert [e["file"] for e in entries] == ["a.pt"] and not list(out.glob("a-*"))  # no `-1` copy
    assert any("adopted" in ln for ln in lines)
    assert {k: v for k, v in _snapshot(out).items() if k != "manifest.json"} == before  # the file was kept as is
    # a file of another subnet under that name is someone else's: never replaced
    (out / "manifest.json").unlink()
    extract_subnets(workspace / "supernet.ckpt", [{"arch": str(SPACE.largest()), "name": "a"}], out,
                    calib_batches=1)
    assert [e["file"] for e in read_manifest(out)[1]] == ["a-1.pt"] and (out / "a.pt").read_bytes()


def test_orphan_without_its_onnx_is_written_again_in_place(workspace: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "subnets"
    extract_subnets(workspace / "supernet.ckpt", [{"arch": SMALLEST, "name": "a"}], out, calib_batches=1,
                    fmt="safetensors")
    (out / "manifest.json").unlink()  # interrupted after the weights, before the .onnx and the manifest
    extract_subnets(workspace / "supernet.ckpt", [{"arch": SMALLEST, "name": "a"}], out, calib_batches=1,
                    fmt="onnx")
    assert sorted(p.name for p in out.iterdir()) == ["a.onnx", "a.safetensors", "manifest.json"]
    assert read_manifest(out)[1][0]["onnx"] == "a.onnx"


def test_stale_checkpoint_temporaries_are_removed_under_the_lock(tmp_path: Path, capsys) -> None:
    from oneshot.pipeline.run_folder import RunLock

    (tmp_path / ".supernet.ckpt.ab12_x9z").write_bytes(b"half a checkpoint")
    (tmp_path / ".notes.txt.ab12_x9z").write_text("not a checkpoint temporary")
    with RunLock(tmp_path, "test"):
        assert not (tmp_path / ".supernet.ckpt.ab12_x9z").exists()
        assert (tmp_path / ".oneshot.lock").is_file()
    assert (tmp_path / ".notes.txt.ab12_x9z").exists() and not (tmp_path / ".oneshot.lock").exists()
    assert "removed 1 temporary file(s) of an interrupted checkpoint save" in capsys.readouterr().err


def test_data_that_moved_is_found_with_data_path_and_other_data_is_refused(tmp_path: Path, capsys) -> None:
    """--data-path for evaluate, extract, search and run: the same images at a new path are used (and results keyed
    by the data are reused); a folder whose split differs is refused by the split digest."""
    first = image_folder(tmp_path / "images", 12)
    recipe = {**TINY_RECIPE, "output_dir": str(tmp_path / "runs"),
              "data": {"name": "imagefolder", "path": str(first), "image_size": 8, "batch_size": 8}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "--no-progress"]) == 0
    ckpt = tmp_path / "runs" / "tiny" / "supernet.ckpt"
    cal = ["--calib-batches", "1", "--calib-batch-size", "8"]
    assert main(["evaluate", str(ckpt), "--num-subnets", "2", "--no-progress", *cal]) == 0
    table = ckpt.parent / "evaluations.jsonl"
    lines = table.read_text().count("\n")
    moved = tmp_path / "moved" / "images"
    moved.parent.mkdir()
    shutil.move(first, moved)
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), "--num-subnets", "2", "--no-progress", *cal]) == 2  # not found where it was
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(ckpt), "--num-subnets", "2", "--no-progress", "--data-path", str(moved), *cal]) == 0
    assert "(2 evaluated now" not in capsys.readouterr().out and table.read_text().count("\n") == lines  # reused
    assert main(["extract", str(ckpt), "--arch", SMALLEST, "--data-path", str(moved), "--calib-batches", "1"]) == 0
    assert main(["search", str(ckpt), "--n-trials", "2", "--run-dir", str(tmp_path / "s"), "--no-progress",
                 "--data-path", str(moved)]) == 0
    assert main(["run", str(tmp_path / "r.yaml"), "--phases", "train,evaluate", "--no-progress", "--data-path",
                 str(moved), "--set", "evaluate.num_subnets=2", "--set", "evaluate.calib_batches=1",
                 "--set", "evaluate.calib_batch_size=8"]) == 0
    other = image_folder(tmp_path / "other", 13)  # other images: another split
    capsys.readouterr()
    before = _snapshot(tmp_path / "runs")
    assert main(["extract", str(ckpt), "--arch", SMALLEST, "--data-path", str(other), "--out",
                 str(tmp_path / "runs" / "x"), "--calib-batches", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("oneshot extract: error: "), err
    assert "split differs from the one the checkpoint was trained with" in err
    assert _snapshot(tmp_path / "runs") == before
