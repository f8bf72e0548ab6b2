"""Fail at import, saying why, when the top-level `oneshot` is a stray folder rather than this package.

A script run next to a folder named `oneshot` without `__init__.py` (typically the clone of this repository)
imports that folder as a namespace package; the subpackages still load through the editable install, so the
mistake used to surface only much later (`cannot import name '__version__'`, after training). Every subpackage
imports this module first.
"""

from __future__ import annotations

import sys


def _check() -> None:
    top = sys.modules.get("oneshot")
    if top is not None and getattr(top, "__file__", None) is None:
        where = ", ".join(str(p) for p in getattr(top, "__path__", [])) or "a namespace package"
        raise ImportError(f"'oneshot' was imported from {where}, a folder without __init__.py (a clone of the "
                          "repository next to your script?), not the oneshot package: run the script from another "
                          "folder or rename that folder")


_check()
