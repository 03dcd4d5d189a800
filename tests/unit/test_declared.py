"""Choosing the dependency source, and the Python version request."""

from __future__ import annotations

import json

import pytest
from packaging.specifiers import SpecifierSet

from mlbuildpack.config import Config
from mlbuildpack.declared import DeclarationKind, read_declaration
from mlbuildpack.errors import BuildpackError, Origin

UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "torch" }]

[package.metadata]
requires-dist = [{ name = "torch" }]

[[package]]
name = "torch"
version = "2.3.1"
source = { registry = "https://pypi.org/simple" }
"""

POETRY_LOCK = """\
[[package]]
name = "torch"
version = "2.3.1"
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = []

[metadata]
lock-version = "2.1"
python-versions = "^3.11"
content-hash = "0"
"""

PIPFILE_LOCK = json.dumps({"_meta": {}, "default": {"torch": {"version": "==2.3.1"}}})
PYPROJECT = '[project]\nname = "app"\ndependencies = ["torch"]\n'


@pytest.mark.parametrize(
    "present, chosen",
    [
        (["uv.lock", "poetry.lock", "Pipfile.lock", "requirements.txt"], "uv.lock"),
        (["poetry.lock", "Pipfile.lock", "requirements.txt"], "poetry.lock"),
        (["Pipfile.lock", "requirements.txt"], "Pipfile.lock"),
        (["requirements.txt"], "requirements.txt"),
        ([], "pyproject (PEP 621)"),
    ],
)
def test_lock_files_come_first_then_requirements_then_pyproject(
    make_app, present, chosen
):
    contents = {
        "uv.lock": UV_LOCK,
        "poetry.lock": POETRY_LOCK,
        "Pipfile.lock": PIPFILE_LOCK,
        "requirements.txt": "torch==2.3.1\n",
    }
    app = make_app({"pyproject.toml": PYPROJECT, **{n: contents[n] for n in present}})

    declaration = read_declaration(app, Config(), {})

    assert str(declaration.kind) == chosen
    assert f"{declaration.kind}" == chosen  # what the build log prints


def test_configured_requirements_file_wins(make_app):
    app = make_app(
        {
            "uv.lock": UV_LOCK,
            "pyproject.toml": PYPROJECT,
            "requirements/prod.txt": "torch==2.3.1\n",
        }
    )

    declaration = read_declaration(
        app, Config(requirements_file="requirements/prod.txt"), {}
    )

    assert declaration.kind is DeclarationKind.REQUIREMENTS_TXT
    assert declaration.files == (app / "requirements/prod.txt",)


def test_configured_requirements_file_that_is_missing_names_the_variable(make_app):
    app = make_app({"requirements.txt": "torch\n"})

    with pytest.raises(BuildpackError) as raised:
        read_declaration(app, Config(requirements_file="reqs/missing.txt"), {})

    assert "BP_ML_REQUIREMENTS_FILE=reqs/missing.txt" in raised.value.cause


def test_configured_lock_file_is_read_as_a_lock(make_app):
    app = make_app(
        {
            "requirements.txt": "flask\n",
            "service/uv.lock": UV_LOCK,
            "service/pyproject.toml": PYPROJECT,
        }
    )

    declaration = read_declaration(app, Config(requirements_file="service/uv.lock"), {})

    assert declaration.kind is DeclarationKind.UV_LOCK
    assert [p.name for p in declaration.locked_packages] == ["torch"]


def test_app_without_dependency_files_declares_nothing(make_app):
    app = make_app({"app.py": "print('hi')\n", "pyproject.toml": "[tool.ruff]\n"})

    declaration = read_declaration(app, Config(), {})

    assert declaration.kind is DeclarationKind.NONE
    assert declaration.requirements == ()
    assert not declaration.is_locked


def test_python_version_file_runtime_txt_then_requires_python(make_app):
    app = make_app(
        {
            ".python-version": "# pinned for the app\n3.12\n3.11\n",
            "runtime.txt": "python-3.12.4\n",
            "pyproject.toml": """
                [project]
                name = "app"
                requires-python = ">=3.10"
                dependencies = []
                """,
        }
    )

    declaration = read_declaration(app, Config(), {})

    requests = declaration.python_requests
    assert [r.specifier for r in requests] == [
        SpecifierSet("==3.12.*"),
        SpecifierSet("==3.12.4"),
        SpecifierSet(">=3.10"),
    ]
    assert declaration.python_request.origin == Origin(app / ".python-version", 2)
    assert declaration.python_request.text == "3.12"
    assert app / ".python-version" in declaration.files
    assert app / "runtime.txt" in declaration.files


def test_python_version_that_is_not_cpython_is_an_error(make_app):
    app = make_app({".python-version": "pypy3.10\n", "requirements.txt": "torch\n"})

    with pytest.raises(BuildpackError) as raised:
        read_declaration(app, Config(), {})

    assert raised.value.origin == Origin(app / ".python-version", 1)


def test_package_names_leave_out_constraints(make_app):
    app = make_app(
        {
            "requirements.txt": "-c constraints.txt\nflask\n",
            "constraints.txt": "torch==2.3.1\n",
        }
    )

    assert read_declaration(app, Config(), {}).package_names() == {"flask"}


def test_environment_reaches_requirements_files(make_app):
    app = make_app({"requirements.txt": "-i https://${HOST}/simple\nflask\n"})

    declaration = read_declaration(app, Config(), {"HOST": "mirror.example"})

    assert declaration.index_options.index_url.value == "https://mirror.example/simple"
