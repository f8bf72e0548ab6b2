"""Stage 8, the command line: argument definitions only; each command imports the engine when it runs."""

from .main import COMMANDS, UserError, build_parser, main

__all__ = ["main", "build_parser", "COMMANDS", "UserError"]
