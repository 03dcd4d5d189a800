"""Reading TOML on every Python we support, with errors that name file and line.

Python 3.11 and newer ship ``tomllib``; on 3.9 and 3.10 the vendored ``tomli`` (the
same parser under its original name) takes its place. TOML parsers keep no positions
for the values they return, so :func:`line_of` finds the line of a value in the raw
text when an error needs one.
"""

from __future__ import annotations

import codecs
import re
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from .errors import BuildpackError, Origin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9 and 3.10 only
    import tomli as tomllib

__all__ = [
    "tomllib",
    "TOMLDecodeError",
    "parse_toml",
    "read_text",
    "read_toml",
    "line_of",
]

TOMLDecodeError = tomllib.TOMLDecodeError

_LINE_IN_MESSAGE = re.compile(r"at line (\d+)")


def parse_toml(text: str, path: Path) -> Dict[str, Any]:
    """Return the parsed document ``text`` read from ``path``.

    Raises :class:`BuildpackError` naming ``path`` and the line of the syntax error.
    """
    try:
        return tomllib.loads(text)
    except TOMLDecodeError as error:
        line = getattr(error, "lineno", None)
        if line is None:
            # tomllib before 3.14 keeps the position only in the message.
            found = _LINE_IN_MESSAGE.search(str(error))
            line = int(found.group(1)) if found else None
        raise BuildpackError(
            f"{path.name} is not valid TOML",
            f"Reading {path.name} failed: {error}.",
            f'Fix the syntax of {path.name}; `python3 -c "import tomllib; '
            f"tomllib.load(open('{path.name}', 'rb'))\"` shows the same error.",
            Origin(path, line),
        ) from None


# UTF-32 first: its little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_text(path: Path) -> str:
    """Return the text of ``path``: UTF-8, or UTF-16/32 when a byte-order mark says so.

    pip reads requirements files the same way; Windows PowerShell writes UTF-16 with a
    mark when output is redirected (``pip freeze > requirements.txt``). A UTF-8 mark
    is dropped. Raises :class:`BuildpackError` when the file cannot be read or
    decoded.
    """
    try:
        data = path.read_bytes()
        encoding = next(
            (name for mark, name in _BYTE_ORDER_MARKS if data.startswith(mark)),
            "UTF-8",
        )
        return data.decode("utf-8-sig" if encoding == "UTF-8" else encoding)
    except UnicodeDecodeError as error:
        raise BuildpackError(
            f"{path.name} is not {encoding} text",
            f"Byte {error.start} of {path.name} cannot be decoded as {encoding}.",
            f"Save {path.name} as UTF-8.",
            Origin(path),
        ) from None
    except OSError as error:
        raise BuildpackError(
            f"Cannot read {path.name}",
            f"Opening {path} failed: {error.strerror}.",
            f"Make sure {path.name} is a readable file.",
            Origin(path),
        ) from None


def read_toml(path: Path) -> Dict[str, Any]:
    """Return the parsed TOML document at ``path``.

    Raises :class:`BuildpackError` when the file is unreadable or not valid TOML.
    """
    return parse_toml(read_text(path), path)


def line_of(text: str, pattern: str, after: Optional[str] = None) -> Optional[int]:
    """Return the 1-based number of the first line of ``text`` matching ``pattern``.

    ``pattern`` is a regular expression searched within each line. When ``after`` is
    given, the search starts below the first line that matches ``after`` (typically a
    table header). Returns None when nothing matches.
    """
    lines = text.splitlines()
    start = 0
    if after is not None:
        header = re.compile(after)
        for number, line in enumerate(lines):
            if header.search(line):
                start = number + 1
                break
        else:
            return None
    wanted = re.compile(pattern)
    for number in range(start, len(lines)):
        if wanted.search(lines[number]):
            return number + 1
    return None


def table_header(name: str) -> str:
    """Return a pattern matching the header line of table ``[name]``.

    ``name`` is a dotted key such as ``tool.poetry.dependencies``; spaces around the
    dots and brackets are allowed, as TOML allows them.
    """
    parts = [re.escape(part) for part in name.split(".")]
    return r"^\s*\[\s*" + r"\s*\.\s*".join(parts) + r"\s*\]\s*(#.*)?$"
