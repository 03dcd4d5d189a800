"""TOML reading with file-and-line errors, and finding a value's line."""

from __future__ import annotations

import pytest

from mlbuildpack.errors import BuildpackError, Origin
from mlbuildpack.tomlcompat import line_of, read_toml, table_header

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
