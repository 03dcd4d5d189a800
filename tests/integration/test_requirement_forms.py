"""Requirements written in the forms pip reads: constraints, nested includes, VCS
URLs, local wheels and markers (field cases F11, F12, F25)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import AppFactory, Build, Builds, write_files
from helpers import (
    cuda_names,
    distributions,
    layer_pins,
    layers_holding,
    log_lines,
    run_python,
    unmet_requirements,
)
from support.wheels import WheelFactory, WheelSpec

# --- F11: -c constraints.txt ----------------------------------------------------------


@pytest.fixture(scope="module")
def constrained(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": """\
                -c constraints.txt
                flask
                scikit-learn
            """,
            "constraints.txt": """\
                flask==3.0.3
                scikit-learn==1.8.0
                numpy==2.3.0
                scipy==1.16.0
                smalldep==1.17.0
            """,
        },
        name="constraints",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


def test_constraints_pin_packages_in_their_own_heavy_layers(constrained: Build) -> None:
    # numpy 2.3.1 is the newest on the index; the constraint holds it at 2.3.0.
    image = constrained.image

    assert distributions(image)["numpy"] == "2.3.0"
    assert layer_pins(image, "numpy") == ["numpy==2.3.0"]
    assert layers_holding(image, "numpy") == ["numpy"]
    assert layer_pins(image, "scipy") == ["scipy==1.16.0"]
    assert constrained.pypi_downloads.count("numpy-2.3.0-py3-none-any.whl") >= 1
    assert not [f for f in constrained.pypi_downloads if f.startswith("numpy-2.3.1")]


def test_constraint_only_packages_are_not_installed(constrained: Build) -> None:
    assert "smalldep" not in distributions(constrained.image)
    assert not [f for f in constrained.pypi_downloads if f.startswith("smalldep")]


# --- F12: nested -r includes ----------------------------------------------------------


@pytest.fixture(scope="module")
def nested_includes(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": "-r base.txt\ngunicorn==22.0.0\n",
            "requirements/base.txt": "torch==2.13.0\nsentence-transformers==5.0.0\n",
        },
        name="nested-includes",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


def test_packages_two_includes_deep_are_detected(nested_includes: Build) -> None:
    detect_output = nested_includes.result.detect.output

    assert "torch (requirements/base.txt:1)" in detect_output
    assert "sentence-transformers (requirements/base.txt:2)" in detect_output


def test_torch_two_includes_deep_is_the_cpu_build_in_its_layer(
    nested_includes: Build,
) -> None:
    image = nested_includes.image
    installed = distributions(image)

    assert installed["torch"] == "2.13.0+cpu"
    assert cuda_names(installed) == []
    assert layers_holding(image, "torch") == ["torch"]
    assert layers_holding(image, "gunicorn") == ["deps"]
    assert log_lines(
        nested_includes.output,
        r"torch==2\.13\.0 \(requirements/base\.txt:1\) -> 2\.13\.0\+cpu",
    )
    assert unmet_requirements(image) == []


# --- F25: a VCS requirement -----------------------------------------------------------

# A PEP 517 backend inside the repository (backend-path), so that building the
# package needs nothing from an index: it zips the module with a minimal dist-info.
IN_TREE_BACKEND = """\
import base64
import hashlib
import os
import zipfile

NAME, VERSION = "vcspkg", "0.1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
METADATA = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
WHEEL = (
    "Wheel-Version: 1.0\\nGenerator: in-tree\\nRoot-Is-Purelib: true\\n"
    "Tag: py3-none-any\\n"
)


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "w") as handle:
        handle.write(METADATA)
    with open(os.path.join(target, "WHEEL"), "w") as handle:
        handle.write(WHEEL)
    return DIST_INFO


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"{name},sha256={digest.decode()},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join(NAME, "__init__.py"), "rb") as handle:
        files = {f"{NAME}/__init__.py": handle.read()}
    files[f"{DIST_INFO}/METADATA"] = METADATA.encode()
    files[f"{DIST_INFO}/WHEEL"] = WHEEL.encode()
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{DIST_INFO}/RECORD,,")
    files[f"{DIST_INFO}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel_name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return wheel_name
"""

VCS_PYPROJECT = """\
[project]
name = "vcspkg"
version = "0.1.0"

[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def make_git_repo(directory: Path) -> str:
    """Create a git repository holding the ``vcspkg`` project; return the commit."""
    write_files(
        directory,
        {
            "pyproject.toml": VCS_PYPROJECT,
            "backend.py": IN_TREE_BACKEND,
            "vcspkg/__init__.py": 'FROM = "git"\n',
        },
    )

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=directory,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    git("init", "--quiet", "--initial-branch", "main")
    git("add", ".")
    git("commit", "--quiet", "-m", "vcspkg 0.1.0")
    git("tag", "v0.1.0")
    return git("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def git_file_requirement(
    builds: Builds, module_app: AppFactory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Build, str]:
    repo = tmp_path_factory.mktemp("vcspkg-repo")
    commit = make_git_repo(repo)
    app_dir = module_app(
        {
            "requirements.txt": f"""\
                flask==3.0.3
                torch==2.13.0
                vcspkg @ git+{repo.as_uri()}@v0.1.0
            """
        },
        name="git-file",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build, commit


def test_git_requirement_is_built_into_the_deps_layer(
    git_file_requirement: tuple[Build, str],
) -> None:
    build, _ = git_file_requirement
    image = build.image

    assert layers_holding(image, "vcspkg") == ["deps"]
    assert run_python(image, "import vcspkg; print(vcspkg.FROM)").strip() == "git"
    installed = distributions(image)
    assert installed["torch"] == "2.13.0+cpu"
    assert cuda_names(installed) == []


def test_git_requirement_is_pinned_to_its_commit(
    git_file_requirement: tuple[Build, str],
) -> None:
    build, commit = git_file_requirement

    vcs_pins = [p for p in layer_pins(build.image, "deps") if "vcspkg" in p]
    assert len(vcs_pins) == 1 and commit in vcs_pins[0], vcs_pins


# --- Local wheels and markers ---------------------------------------------------------


def test_local_wheel_and_marker_forms(
    builds: Builds, app: AppFactory, wheel_factory: WheelFactory
) -> None:
    local = wheel_factory.build(WheelSpec("localpkg", "1.0.0"))
    app_dir = app(
        {
            "requirements.txt": f"""\
                scikit-learn==1.8.0
                ./wheels/{local.name}
                smalldep==1.17.0 ; python_version < "3"
                flask[async]==3.0.3 ; python_version >= "3"
            """,
            f"wheels/{local.name}": local.read_bytes(),
        }
    )

    build = builds.run(app_dir)

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert installed["localpkg"] == "1.0.0"
    assert installed["flask"] == "3.0.3"
    assert "smalldep" not in installed
    assert layers_holding(build.image, "localpkg") == ["deps"]
