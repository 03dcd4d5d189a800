"""Builds that cannot succeed stop early, with a message that names the cause.

Field cases F12 (a missing ``-r`` include), F22 (a native package pinned to a
version with no wheel for this Python) and F25 (``git+git://``), plus settings the
build cannot act on.
"""

from __future__ import annotations

import io
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from buildkit import AppFactory, Builds
from image_checks import log_lines
from support.index import IndexServer
from support.wheels import WheelSpec, pypi_wheels


def assert_failed_before_resolving(build_output: str, *requests: list) -> None:
    """No uv run and no index touched: the fault was found in the app's files."""
    assert "Resolving with uv" not in build_output
    assert "Installing layer" not in build_output
    for seen in requests:
        assert seen == []


# --- F12: a missing include -----------------------------------------------------------


def test_missing_nested_include_fails_naming_the_file_and_the_including_line(
    builds: Builds, app: AppFactory
) -> None:
    app_dir = app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": "-r base.txt\ngunicorn==22.0.0\n",
        }
    )

    build = builds.run(app_dir)

    assert build.result.detect.passed  # so that the build, not pip, reports it
    assert not build.result.success
    output = build.output
    assert "[Error: Included requirements file not found]" in output
    assert "requirements/base.txt" in output
    assert "requirements/prod.txt:1" in output
    assert_failed_before_resolving(output, build.pypi_requests, build.cpu_requests)


# --- F25: git+git:// ------------------------------------------------------------------


def test_git_protocol_fails_with_the_https_form_to_use(
    builds: Builds, app: AppFactory
) -> None:
    app_dir = app(
        {
            "requirements.txt": """\
                flask==3.0.3
                torch==2.13.0
                requests @ git+git://github.com/psf/requests@v2.32.3
            """
        }
    )

    started = time.monotonic()
    build = builds.run(app_dir)

    assert not build.result.success
    assert time.monotonic() - started < 60
    output = build.output
    assert "[Error: The git:// protocol is not supported]" in output
    assert "git+https://github.com/psf/requests@v2.32.3" in output
    assert "requirements.txt:3" in output
    assert_failed_before_resolving(output, build.pypi_requests, build.cpu_requests)


# --- F22: only an sdist for a native package ------------------------------------------

BUILD_MARKER = "tokenizers-sdist-was-built"


def sdist(name: str, version: str, marker_dir: Path) -> bytes:
    """A source archive whose setup.py, if anyone ran it, leaves a marker file."""
    base = f"{name}-{version}"
    setup_py = textwrap.dedent(
        f"""\
        import pathlib
        pathlib.Path({str(marker_dir / BUILD_MARKER)!r}).write_text("built")
        raise SystemExit("error: can't find Rust compiler")
        """
    )
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members = {
        f"{base}/PKG-INFO": pkg_info,
        f"{base}/setup.py": setup_py,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def sdist_only_index(make_index, tmp_path: Path) -> tuple[IndexServer, Path]:
    """transformers 4.5.1 needs tokenizers 0.10.3, which exists only as an sdist;
    tokenizers 0.20.0 has a wheel."""
    specs = [s for s in pypi_wheels() if s.name in ("flask", "smalldep")]
    specs += [
        WheelSpec("transformers", "4.5.1", requires=("tokenizers==0.10.3",)),
        WheelSpec("tokenizers", "0.20.0"),
    ]
    index = make_index(specs)
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    (index.root / "tokenizers-0.10.3.tar.gz").write_bytes(
        sdist("tokenizers", "0.10.3", marker_dir)
    )
    return index, marker_dir


SDIST_ONLY_CASES = pytest.mark.parametrize(
    "requirements",
    ["transformers==4.5.1\nflask==3.0.3\n", "tokenizers==0.10.3\nsmalldep\n"],
    ids=["through-transformers", "direct-pin"],
)


@SDIST_ONLY_CASES
def test_sdist_only_native_package_fails_fast_without_building(
    builds: Builds,
    app: AppFactory,
    sdist_only_index: tuple[IndexServer, Path],
    requirements: str,
) -> None:
    index, marker_dir = sdist_only_index
    app_dir = app({"requirements.txt": requirements})

    started = time.monotonic()
    build = builds.run(
        app_dir, {"PIP_INDEX_URL": index.url, "BP_ML_FORCE_DETECT": "true"}
    )

    assert not build.result.success
    assert time.monotonic() - started < 60
    assert not (marker_dir / BUILD_MARKER).exists()
    assert "tokenizers-0.10.3.tar.gz" not in index.downloads()
    assert "[Error: No installable wheel for this Python]" in build.output
    assert "Installing layer" not in build.output


@SDIST_ONLY_CASES
def test_sdist_only_message_names_the_package_without_a_wheel_and_the_python(
    builds: Builds,
    app: AppFactory,
    sdist_only_index: tuple[IndexServer, Path],
    build_python: dict[str, str],
    requirements: str,
) -> None:
    index, _ = sdist_only_index
    app_dir = app({"requirements.txt": requirements})

    build = builds.run(
        app_dir, {"PIP_INDEX_URL": index.url, "BP_ML_FORCE_DETECT": "true"}
    )

    output = build.output
    title = "[Error: No installable wheel for this Python]\n"
    assert title in output
    assert log_lines(output, r"tokenizers==0\.10\.3")
    # The cause's first sentence names the package that has no wheel (not the one
    # that requires it) and the Python it has none for.
    cause = output.split(title, 1)[1].splitlines()[0]
    assert cause.startswith("tokenizers"), cause
    assert f"Python {build_python['minor']}" in cause


# --- Settings -------------------------------------------------------------------------


def test_invalid_torch_variant_names_the_setting_and_its_values(
    builds: Builds, app: AppFactory
) -> None:
    app_dir = app({"requirements.txt": "torch==2.13.0\n"})

    build = builds.run(app_dir, {"BP_ML_TORCH_VARIANT": "gpu"})

    assert not build.result.success
    assert "[Error: Invalid value for BP_ML_TORCH_VARIANT]" in build.output
    assert log_lines(build.output, r"cpu .*cuda .*as-declared")


def test_forced_build_of_an_app_without_dependency_files_says_what_to_add(
    builds: Builds, app: AppFactory
) -> None:
    app_dir = app({"app.py": "print('hello')\n"})

    build = builds.run(app_dir, {"BP_ML_FORCE_DETECT": "true"})

    assert not build.result.success
    assert "[Error: No dependency file]" in build.output
    assert "requirements.txt" in build.output
