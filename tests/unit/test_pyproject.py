"""Reading pyproject.toml: PEP 621, Poetry, and the uv and Poetry source tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mlbuildpack.declared import DeclarationKind, SourceKind
from mlbuildpack.errors import BuildpackError, Origin
from mlbuildpack.pyproject import poetry_constraint_to_pep440, read_pyproject


def read(app_dir: Path, pinned_by_lock: bool = False):
    return read_pyproject(app_dir / "pyproject.toml", app_dir, pinned_by_lock)


def by_name(declaration) -> dict:
    return {r.name: r for r in declaration.requirements}


@pytest.mark.parametrize(
    "poetry, pep440",
    [
        ("^1.2.3", ">=1.2.3,<2.0.0"),
        ("^1.2", ">=1.2,<2.0.0"),
        ("^1", ">=1,<2.0.0"),
        ("^0.2.3", ">=0.2.3,<0.3.0"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("^0.0", ">=0.0,<0.1.0"),
        ("^0", ">=0,<1.0.0"),
        ("~1.2.3", ">=1.2.3,<1.3.0"),
        ("~1.2", ">=1.2,<1.3.0"),
        ("~1", ">=1,<2.0.0"),
        ("~=1.2", "~=1.2"),
        ("1.2.*", "==1.2.*"),
        ("1.*", "==1.*"),
        ("*", ""),
        ("", ""),
        ("1.2.3", "==1.2.3"),
        ("==2.3.1", "==2.3.1"),
        (">=1.2, <2.0", ">=1.2,<2.0"),
        (">= 1.2 < 2.0", ">=1.2,<2.0"),
        ("!=1.5", "!=1.5"),
        ("^2.3.1+cpu", ">=2.3.1,<3.0.0"),
        ("2.3.1+cpu", "==2.3.1+cpu"),
    ],
)
def test_poetry_constraint_becomes_pep440(poetry, pep440):
    assert poetry_constraint_to_pep440(poetry) == pep440


@pytest.mark.parametrize("constraint", ["^1.0 || ^2.0", "latest", "^abc"])
def test_poetry_constraint_that_pep440_cannot_express_is_refused(constraint):
    with pytest.raises(ValueError):
        poetry_constraint_to_pep440(constraint)


def test_pep621_dependencies_and_requires_python(make_app):
    app = make_app(
        {
            "pyproject.toml": """
            [project]
            name = "My_App"
            version = "0.1.0"
            requires-python = ">=3.10"
            dependencies = [
                "torch>=2.3",
                "fastapi==0.111.0",
                "pywin32; sys_platform == 'win32'",
            ]

            [project.optional-dependencies]
            dev = ["pytest"]

            [dependency-groups]
            lint = ["ruff"]
            """,
        }
    )

    declaration = read(app)

    assert declaration.kind is DeclarationKind.PYPROJECT_PEP621
    assert declaration.project_name == "my-app"
    assert [r.name for r in declaration.requirements] == ["torch", "fastapi", "pywin32"]
    assert declaration.requirements[0].origin == Origin(app / "pyproject.toml", 6)
    assert declaration.python_request.specifier == SpecifierSet(">=3.10")
    assert declaration.python_request.origin.line == 4


def test_pep621_dependency_with_git_protocol_is_refused(make_app):
    app = make_app(
        {
            "pyproject.toml": """
            [project]
            name = "app"
            dependencies = ["requests @ git+git://github.com/psf/requests@v2.32.3"]
            """,
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert "git://" in raised.value.title


def test_uv_sources_tie_dependencies_to_their_index_git_or_path(make_app):
    app = make_app(
        {
            "pyproject.toml": """
            [project]
            name = "app"
            dependencies = ["torch==2.3.1", "requests", "mylib", "flask"]

            [tool.uv.sources]
            torch = { index = "pytorch-cpu" }
            requests = { git = "https://github.com/psf/requests", tag = "v2.32.3" }
            mylib = { path = "libs/mylib", editable = true }

            [[tool.uv.index]]
            name = "pytorch-cpu"
            url = "https://download.pytorch.org/whl/cpu"
            explicit = true
            """,
        }
    )

    declaration = read(app)
    found = by_name(declaration)

    assert found["torch"].index_url == "https://download.pytorch.org/whl/cpu"
    assert found["torch"].text == "torch==2.3.1"
    assert found["requests"].source_kind is SourceKind.VCS
    assert found["requests"].text == (
        "requests @ git+https://github.com/psf/requests@v2.32.3"
    )
    assert found["mylib"].editable
    assert found["mylib"].text == f"mylib @ {(app / 'libs/mylib').as_uri()}"
    assert found["flask"].index_url is None
    # An explicit index serves only the packages that name it.
    assert declaration.index_options.is_empty()


@pytest.fixture
def poetry_project(make_app):
    return make_app(
        {
            "pyproject.toml": """
            [tool.poetry]
            name = "ml-service"
            version = "0.1.0"

            [tool.poetry.dependencies]
            python = "^3.11"
            flask = "^3.0.3"
            numpy = "~1.26"
            pandas = "2.2.*"
            gunicorn = "22.0.0"
            torch = { version = "^2.3.1", source = "pytorch-cpu" }
            uvicorn = { version = ">=0.30", extras = ["standard"] }
            pywin32 = { version = "*", markers = "sys_platform == 'win32'" }
            tomli = { version = "^2.0", python = "<3.11" }
            requests = { git = "https://github.com/psf/requests.git", tag = "v2.32.3" }
            helper = { url = "https://example.com/helper-1.0-py3-none-any.whl" }
            mylib = { path = "libs/mylib", develop = true }
            scipy = [
                { version = "^1.13", python = ">=3.11" },
                { version = "^1.11", python = "<3.11" },
            ]
            extra-only = { version = "^1.0", optional = true }

            [tool.poetry.group.dev.dependencies]
            pytest = "^8.0"

            [[tool.poetry.source]]
            name = "mirror"
            url = "https://mirror.example/simple"
            priority = "primary"

            [[tool.poetry.source]]
            name = "pytorch-cpu"
            url = "https://download.pytorch.org/whl/cpu"
            priority = "explicit"

            [[tool.poetry.source]]
            name = "extras"
            url = "https://extras.example/simple"
            priority = "supplemental"
            """,
        }
    )


def test_poetry_dependencies_become_pep508_requirements(poetry_project):
    declaration = read(poetry_project)
    found = by_name(declaration)

    assert declaration.kind is DeclarationKind.PYPROJECT_POETRY
    assert declaration.project_name == "ml-service"
    assert found["flask"].text == "flask>=3.0.3,<4.0.0"
    assert found["numpy"].text == "numpy>=1.26,<1.27.0"
    assert found["pandas"].text == "pandas==2.2.*"
    assert found["gunicorn"].text == "gunicorn==22.0.0"
    assert found["uvicorn"].requirement.extras == {"standard"}
    assert str(found["pywin32"].marker) == 'sys_platform == "win32"'
    assert str(found["tomli"].marker) == 'python_version < "3.11"'
    assert found["requests"].text == (
        "requests @ git+https://github.com/psf/requests.git@v2.32.3"
    )
    assert found["helper"].source_kind is SourceKind.URL
    assert found["mylib"].editable and found["mylib"].source_kind is SourceKind.PATH
    assert "extra-only" not in found and "pytest" not in found
    scipy = [r for r in declaration.requirements if r.name == "scipy"]
    assert [r.text for r in scipy] == [
        'scipy>=1.13,<2.0.0 ; python_version >= "3.11"',
        'scipy>=1.11,<2.0.0 ; python_version < "3.11"',
    ]


def test_poetry_line_numbers_point_at_each_dependency(poetry_project):
    found = by_name(read(poetry_project))

    assert found["flask"].origin == Origin(poetry_project / "pyproject.toml", 7)
    assert found["torch"].origin.line == 11


def test_poetry_python_dependency_is_the_python_request(poetry_project):
    request = read(poetry_project).python_request

    assert request.specifier == SpecifierSet(">=3.11,<4.0.0")
    assert request.origin.line == 6


def test_poetry_sources_become_index_options(poetry_project):
    declaration = read(poetry_project)
    options = declaration.index_options

    assert options.index_url.value == "https://mirror.example/simple"
    assert [v.value for v in options.extra_index_urls] == [
        "https://extras.example/simple"
    ]
    assert by_name(declaration)["torch"].index_url == (
        "https://download.pytorch.org/whl/cpu"
    )


def test_unknown_poetry_source_names_the_dependency_line(make_app):
    app = make_app(
        {
            "pyproject.toml": """
            [tool.poetry.dependencies]
            python = "^3.11"
            torch = { version = "^2.3", source = "pytorch" }
            """,
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "pyproject.toml", 3)
    assert "'pytorch'" in raised.value.cause


def test_either_or_constraint_fails_alone_but_not_beside_a_lock(make_app):
    app = make_app(
        {
            "pyproject.toml": """
            [tool.poetry.dependencies]
            numpy = "^1.26 || ^2.0"
            """,
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)
    assert raised.value.origin.line == 2

    assert by_name(read(app, pinned_by_lock=True))["numpy"].text == "numpy"


def test_invalid_toml_names_the_line(make_app):
    app = make_app({"pyproject.toml": "[project]\nname = \n"})

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "pyproject.toml", 2)


def test_a_uv_source_that_is_not_a_table_is_an_error_naming_its_line(make_app):
    # uv would refuse it; silently dropping the dependency would be worse.
    app = make_app(
        {
            "pyproject.toml": """\
                [project]
                name = "app"
                dependencies = ["six==1.17.0", "torch==2.13.0"]

                [tool.uv.sources]
                six = "typo"
            """
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "pyproject.toml", 6)
    assert "'typo'" in raised.value.cause
    assert "index =" in raised.value.fix


def test_dynamic_dependencies_are_an_error_naming_the_dynamic_line(make_app):
    # setuptools may compute them from another file; reading none would install
    # nothing without a word.
    app = make_app(
        {
            "pyproject.toml": """\
                [project]
                name = "app"
                version = "1.0"
                dynamic = ["dependencies"]

                [tool.setuptools.dynamic]
                dependencies = { file = ["requirements.in"] }
            """
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "pyproject.toml", 4)
    assert "requirements.txt" in raised.value.fix


def test_a_dependency_that_is_not_pep_508_gets_a_fix_in_pyproject_terms(make_app):
    app = make_app(
        {
            "pyproject.toml": """\
                [project]
                name = "app"
                dependencies = [
                    "torch==2.13.0",
                    "six=1.17.0",
                ]
            """
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "pyproject.toml", 5)
    assert "PEP 508" in raised.value.fix
    assert "-r" not in raised.value.fix
    rendered = raised.value.render(app)
    assert "\n(pyproject.toml:5)\n" in rendered, rendered
    assert "^." not in rendered, rendered


def test_poetry_extras_given_as_one_string_is_one_extra(make_app):
    app = make_app(
        {
            "pyproject.toml": """\
                [tool.poetry.dependencies]
                python = "^3.11"
                torch = "^2.3"
                six = { version = "1.17.0", extras = "cpu" }
            """
        }
    )

    six = by_name(read(app))["six"]

    assert six.requirement.extras == {"cpu"}
