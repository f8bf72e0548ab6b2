"""A folder named `oneshot` (a clone) next to a script shadows the package as a namespace package: the engine's
subpackages refuse to load at import, saying so, instead of failing after training."""

import subprocess
import sys
from pathlib import Path

import oneshot

REAL = str(Path(oneshot.__file__).parent)

SCRIPT = """
import importlib.machinery, importlib.util, sys
spec = importlib.machinery.ModuleSpec("oneshot", None, is_package=True)
spec.submodule_search_locations = [sys.argv[1], sys.argv[2]]  # the stray folder first, as a path scan finds it
sys.modules["oneshot"] = importlib.util.module_from_spec(spec)  # what the import system builds for a namespace
try:
    import oneshot.{sub}
except ImportError as exc:
    print(exc)
else:
    print("imported")
"""


def test_a_stray_oneshot_folder_fails_at_import_with_the_reason(tmp_path: Path) -> None:
    stray = tmp_path / "oneshot"
    stray.mkdir()
    for sub in ("training", "score", "pipeline", "cli"):
        out = subprocess.run([sys.executable, "-c", SCRIPT.replace("{sub}", sub), str(stray), REAL],
                             capture_output=True, text=True, cwd=tmp_path).stdout
        assert str(stray) in out and "without __init__.py" in out, (sub, out)


def test_the_real_package_imports() -> None:
    out = subprocess.run([sys.executable, "-c", "import oneshot.cli, oneshot.deploy; print('imported')"],
                         capture_output=True, text=True, cwd=Path(REAL).parent).stdout
    assert out.strip() == "imported"
