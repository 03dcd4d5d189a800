"""Unit test fixtures: the buildpack's lib/ on sys.path, and app directory builders."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Callable, Dict

import pytest

_LIB = Path(__file__).resolve().parents[2] / "lib"
for _path in (str(_LIB / "_vendor"), str(_LIB)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

AppWriter = Callable[[Dict[str, str]], Path]


@pytest.fixture
def make_app(tmp_path: Path) -> AppWriter:
    """Return a function that writes ``{relative path: text}`` into a fresh app dir.

    Texts are dedented and stripped of leading newlines, so fixtures can be written as
    indented triple-quoted strings. Returns the app directory.
    """
    app_dir = tmp_path / "app"
    app_dir.mkdir()

    def write(files: Dict[str, str]) -> Path:
        for relative, text in files.items():
            target = app_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text).lstrip("\n"))
        return app_dir

    return write
