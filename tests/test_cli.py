"""The CLI layer only defines arguments: building every command's parser imports neither torch nor Optuna."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_help_imports_no_engine():
    code = ("import sys; from oneshot.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'optuna', 'lightning', 'supernets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
