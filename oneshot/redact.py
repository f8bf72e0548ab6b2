"""Secrets kept off disk and out of messages: storage URLs with their password masked, `${VAR}` references.

A storage URL such as `postgresql+psycopg://user:PW@host/db` is printed, and saved in `recipe.json`, the report and
the checkpoint, with the password replaced by `***`. To run with a password without writing it into a recipe, give
the URL (or the part holding the password) as an environment-variable reference, `storage: ${ONESHOT_STORAGE}`:
the reference is what is saved, and it is expanded only when the storage is opened. Torch- and Optuna-free, so the
recipe layer can use it.
"""

from __future__ import annotations

import os
import re

__all__ = ["redact", "expand_env", "MASK"]

MASK = "***"

# user:password@host, the password possibly empty-usered (`://:pw@`) or holding `@` or `/` unescaped: everything
# between the first `:` of the userinfo and the last `@` before a host with no `@`, `/`, `?` or `#`.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):.*@(?P<host>[^@/?#]*(?:[/?#].*)?)$",
                       re.DOTALL)
_QUERY = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd|pass|secret|token)=)[^&;#]*", re.IGNORECASE)
_VAR = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def redact(url: str) -> str:
    """A storage URL with its password replaced by `***` (in the userinfo and in `?password=`), safe to print
    and to save. `${VAR}` references are left as written (they hold no secret)."""
    url = _QUERY.sub(rf"\g<key>{MASK}", url)
    m = _USERINFO.match(url)
    # Redacting a query password first leaves `***` in the query, never an `@`: the userinfo match is unaffected.
    if m and re.fullmatch(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", url[len(m["head"]) + 1:url.rfind("@")]):
        return url  # the password is itself a reference: nothing secret in it
    return f"{m['head']}:{MASK}@{m['host']}" if m else url


def expand_env(text: str, what: str) -> str:
    """`text` with `$VAR` and `${VAR}` replaced by the environment's values; an unset or malformed reference is a
    one-line error naming `what` (a recipe key, `--storage`). `$$` stands for a literal `$`."""
    def value(m: re.Match[str]) -> str:
        name = m["braced"] if m["braced"] is not None else m["plain"]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
            raise ValueError(f"{what}: {m.group()!r} is not an environment variable reference (write ${{NAME}})")
        if name not in os.environ:
            raise ValueError(f"{what} refers to the environment variable {name}, which is not set")
        return os.environ[name]

    parts = text.split("$$")
    out = []
    for part in parts:
        expanded = _VAR.sub(value, part)
        if "$" in _VAR.sub("", part):
            raise ValueError(f"{what}: a '$' that starts no ${{NAME}} reference in {text!r} (write $$ for a "
                             "literal '$')")
        out.append(expanded)
    return "$".join(out)
