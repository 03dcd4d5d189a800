"""TOML reading with file-and-line errors, and finding a value's line."""

from __future__ import annotations

import codecs

import pytest

from mlbuildpack.errors import BuildpackError, Origin
from mlbuildpack.tomlcompat import line_of, read_text, read_toml, table_header

DOCUMENT = """\
[project]
name = "app"

[tool.poetry.dependencies]
torch = "^2.3"
"""


def test_line_of_searches_below_a_table_header():
    header = table_header("tool.poetry.dependencies")

    assert line_of(DOCUMENT, r"^torch\s*=", after=header) == 5
    assert line_of(DOCUMENT, r"^name\s*=", after=header) is None
    assert line_of(DOCUMENT, r"^name\s*=") == 2


def test_invalid_toml_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname = \n")

    with pytest.raises(BuildpackError) as raised:
        read_toml(path)

    assert raised.value.origin == Origin(path, 2)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32", "utf-16-be"])
def test_read_text_follows_a_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "requirements.txt"
    text = "torch==2.3.1\r\nflask\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    path.write_bytes(data)

    assert read_text(path) == text


def test_read_text_refuses_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"torch==2.3.1 \xff\n")

    with pytest.raises(BuildpackError) as raised:
        read_text(path)

    assert raised.value.title == "requirements.txt is not UTF-8 text"
