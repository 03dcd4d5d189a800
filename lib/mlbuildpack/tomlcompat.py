"""``tomllib`` on Python 3.11+, the vendored ``tomli`` (same API) before that."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the 3.9/3.10 build images only
    import tomli as tomllib

__all__ = ["tomllib"]
