"""Stage 6, deployment: what leaves the project as standalone networks.

`extract.py` extracts chosen subnets from a checkpoint into standalone files with a manifest (`oneshot extract`);
`manifest.py` reads such a folder's manifest (standard library only, so a bad one is refused before torch
loads); `retrain.py` retrains them standalone and measures the proxy-to-real gap (`oneshot retrain`).
"""

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)
