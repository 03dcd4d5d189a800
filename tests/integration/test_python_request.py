"""The Python the app asks for must be the build's: the buildpack installs none."""

from __future__ import annotations

from buildkit import AppFactory, Builds
from image_checks import log_lines, run_python


def other_minor(minor: str) -> str:
    major, number = minor.split(".")
    return f"{major}.{int(number) - 1}"


def test_python_version_file_naming_another_minor_fails_naming_the_file(
    builds: Builds, app: AppFactory, build_python: dict[str, str]
) -> None:
    wanted = other_minor(build_python["minor"])
    app_dir = app({"requirements.txt": "torch==2.13.0\n", ".python-version": wanted})

    build = builds.run(app_dir)

    assert not build.result.success
    output = build.output
    assert "[Error: The app asks for another Python]" in output
    assert f"asks for Python {wanted}" in output
    assert ".python-version:1" in output
    assert build_python["version"] in output
    assert "Resolving with uv" not in output


def test_python_version_file_naming_the_build_python_passes(
    builds: Builds, app: AppFactory, build_python: dict[str, str]
) -> None:
    minor = build_python["minor"]
    app_dir = app(
        {"requirements.txt": "torch==2.13.0\n", ".python-version": f"{minor}\n"}
    )

    build = builds.run(app_dir)

    assert build.result.success, build.result.describe_failure()
    assert log_lines(
        build.output, rf"Matches the requested Python {minor} \(\.python-version:1\)"
    )
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    assert run_python(build.image, code).strip() == minor


def test_requires_python_excluding_the_build_python_fails_naming_pyproject(
    builds: Builds, app: AppFactory, build_python: dict[str, str]
) -> None:
    minor = build_python["minor"]
    app_dir = app(
        {
            "pyproject.toml": f"""\
                [project]
                name = "svc"
                version = "0.1.0"
                requires-python = "<{minor}"
                dependencies = ["torch==2.13.0"]
            """
        }
    )

    build = builds.run(app_dir)

    assert not build.result.success
    assert "[Error: The app asks for another Python]" in build.output
    assert "pyproject.toml:4" in build.output
