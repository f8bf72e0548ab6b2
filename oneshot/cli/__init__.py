"""Stage 8, the command line: argument definitions only; each command imports the engine when it runs."""

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)
from .main import COMMANDS, UserError, build_parser, main

__all__ = ["main", "build_parser", "COMMANDS", "UserError"]
