"""Apps locked with uv, Poetry or Pipenv build from their pins as they are, except
that a locked PyPI torch becomes the matching ``+cpu`` build, and the CUDA wheels
that only torch needed are left out. Each change is logged.

Every lock here pins numpy 2.3.0 while the index also has 2.3.1, and pins torch
2.13.0 from PyPI with its CUDA dependencies (as a lock made on Linux does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from buildkit import AppFactory, Build, Builds
from image_checks import cuda_files, cuda_names, distributions, log_lines, run_python
from support.index import IndexServer
from support.wheels import WheelFactory, WheelSpec, pypi_wheels

# A package that needs one CUDA library itself, not through torch.
GPUSTATS = WheelSpec("gpustats", "1.0.0", requires=("nvidia-cublas-cu12",))
LINUX = "sys_platform == 'linux'"


@pytest.fixture(scope="module")
def lock_index(
    wheel_factory: WheelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexServer]:
    """The PyPI stand-in's wheels plus gpustats."""
    root = tmp_path_factory.mktemp("lock-index")
    wheel_factory.populate(root, [*pypi_wheels(), GPUSTATS])
    with IndexServer(root) as index:
        yield index


@pytest.fixture(scope="module")
def lock_builds(builds: Builds, lock_index: IndexServer) -> Builds:
    builds.lifecycle.platform_env["PIP_INDEX_URL"] = lock_index.url
    return builds


def assert_locked_pins_with_cpu_torch(build: Build) -> dict[str, str]:
    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert installed["torch"] == "2.13.0+cpu"
    assert installed["numpy"] == "2.3.0"
    assert installed["flask"] == "3.0.3"
    assert installed["filelock"] == "3.16.1"
    assert run_python(build.image, "import torch; print(torch.version.cuda)") == (
        "None\n"
    )
    assert log_lines(
        build.output, r"torch 2\.13\.0 -> 2\.13\.0\+cpu from the CPU index"
    )
    return installed


# --- uv.lock --------------------------------------------------------------------------

UV_PYPROJECT = """\
[project]
name = "mlapp"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = ["flask==3.0.3", "gpustats==1.0.0", "numpy==2.3.0", "torch==2.13.0"]
"""


def uv_lock(registry: str) -> str:
    source = f'source = {{ registry = "{registry}" }}'

    def package(name: str, version: str, *dependencies: str) -> str:
        text = f'\n[[package]]\nname = "{name}"\nversion = "{version}"\n{source}\n'
        if dependencies:
            edges = "".join(f"    {edge},\n" for edge in dependencies)
            text += f"dependencies = [\n{edges}]\n"
        return text

    return (
        'version = 1\nrevision = 2\nrequires-python = ">=3.9"\n'
        + package("filelock", "3.16.1")
        + package("flask", "3.0.3")
        + package("gpustats", "1.0.0", '{ name = "nvidia-cublas-cu12" }')
        + """
[[package]]
name = "mlapp"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "flask" },
    { name = "gpustats" },
    { name = "numpy" },
    { name = "torch" },
]

[package.metadata]
requires-dist = [
    { name = "flask", specifier = "==3.0.3" },
    { name = "gpustats", specifier = "==1.0.0" },
    { name = "numpy", specifier = "==2.3.0" },
    { name = "torch", specifier = "==2.13.0" },
]
"""
        + package("numpy", "2.3.0")
        + package("nvidia-cublas-cu12", "12.4.5.8")
        + package("nvidia-cudnn-cu12", "9.1.0.70")
        + package(
            "torch",
            "2.13.0",
            '{ name = "filelock" }',
            f'{{ name = "nvidia-cublas-cu12", marker = "{LINUX}" }}',
            f'{{ name = "nvidia-cudnn-cu12", marker = "{LINUX}" }}',
            f'{{ name = "triton", marker = "{LINUX}" }}',
            '{ name = "typing-extensions" }',
        )
        + package("triton", "3.3.0")
        + package("typing-extensions", "4.12.2")
    )


@pytest.fixture(scope="module")
def uv_locked(
    lock_builds: Builds, module_app: AppFactory, lock_index: IndexServer
) -> Build:
    app_dir = module_app(
        {"pyproject.toml": UV_PYPROJECT, "uv.lock": uv_lock(lock_index.url)},
        name="uv-lock",
    )
    return lock_builds.run(app_dir)


def test_uv_lock_builds_its_pins_with_cpu_torch(uv_locked: Build) -> None:
    installed = assert_locked_pins_with_cpu_torch(uv_locked)
    assert installed["gpustats"] == "1.0.0"


def test_uv_lock_drops_cuda_packages_only_torch_needs(uv_locked: Build) -> None:
    # gpustats needs nvidia-cublas-cu12 itself, so that one stays.
    assert cuda_names(distributions(uv_locked.image)) == ["nvidia-cublas-cu12"]
    assert log_lines(uv_locked.output, r"dropped nvidia-cudnn-cu12 9\.1\.0\.70")
    assert log_lines(uv_locked.output, r"dropped triton 3\.3\.0")
    assert not log_lines(uv_locked.output, r"dropped nvidia-cublas-cu12")
    assert cuda_files(uv_locked.pypi_downloads) == []
    assert [f for f in uv_locked.pypi_downloads if f.startswith("torch-")] == []


def test_uv_lock_app_is_not_resolved_again(uv_locked: Build) -> None:
    assert log_lines(uv_locked.output, r"Taking the pins of uv\.lock as they are")
    assert "Resolving with uv" not in uv_locked.output


def test_lock_substitution_names_the_opt_out(uv_locked: Build) -> None:
    # F27: the log line that lists the substitution also says how to opt out.
    assert "BP_ML_TORCH_VARIANT=as-declared" in uv_locked.output


# --- poetry.lock ----------------------------------------------------------------------

POETRY_PYPROJECT = """\
[tool.poetry]
name = "mlapp"
version = "0.1.0"

[tool.poetry.dependencies]
python = "^3.9"
flask = "3.0.3"
numpy = "2.3.0"
torch = "2.13.0"
"""


def poetry_lock() -> str:
    def package(name: str, version: str, dependencies: str = "") -> str:
        text = (
            f'\n[[package]]\nname = "{name}"\nversion = "{version}"\n'
            'description = ""\noptional = false\npython-versions = ">=3.9"\n'
            'groups = ["main"]\nfiles = []\n'
        )
        if dependencies:
            text += f"\n[package.dependencies]\n{dependencies}"
        return text

    linux = 'markers = "platform_system == \\"Linux\\""'
    torch_dependencies = (
        'filelock = "*"\n'
        f'nvidia-cublas-cu12 = {{version = "12.4.5.8", {linux}}}\n'
        f'nvidia-cudnn-cu12 = {{version = "9.1.0.70", {linux}}}\n'
        f'triton = {{version = "3.3.0", {linux}}}\n'
        'typing-extensions = ">=4.10.0"\n'
    )
    return (
        package("filelock", "3.16.1")
        + package("flask", "3.0.3")
        + package("numpy", "2.3.0")
        + package("nvidia-cublas-cu12", "12.4.5.8")
        + package("nvidia-cudnn-cu12", "9.1.0.70")
        + package("torch", "2.13.0", torch_dependencies)
        + package("triton", "3.3.0")
        + package("typing-extensions", "4.12.2")
        + '\n[metadata]\nlock-version = "2.1"\npython-versions = "^3.9"\n'
        'content-hash = "0"\n'
    )


@pytest.fixture(scope="module")
def poetry_locked(lock_builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {"pyproject.toml": POETRY_PYPROJECT, "poetry.lock": poetry_lock()},
        name="poetry-lock",
    )
    return lock_builds.run(app_dir)


def test_poetry_lock_builds_its_pins_with_cpu_torch(poetry_locked: Build) -> None:
    assert_locked_pins_with_cpu_torch(poetry_locked)


def test_poetry_lock_drops_the_cuda_packages_of_torch(poetry_locked: Build) -> None:
    assert cuda_names(distributions(poetry_locked.image)) == []
    assert log_lines(poetry_locked.output, r"dropped nvidia-cublas-cu12")
    assert cuda_files(poetry_locked.pypi_downloads) == []


# --- Pipfile.lock ---------------------------------------------------------------------


def pipfile_lock(index_url: str, python_minor: str) -> str:
    def pinned(version: str) -> dict:
        return {"index": "pypi", "version": f"=={version}"}

    linux = {"markers": "platform_system == 'Linux'"}
    return json.dumps(
        {
            "_meta": {
                "hash": {"sha256": "0"},
                "pipfile-spec": 6,
                "requires": {"python_version": python_minor},
                "sources": [{"name": "pypi", "url": index_url, "verify_ssl": False}],
            },
            "default": {
                "filelock": pinned("3.16.1"),
                "flask": pinned("3.0.3"),
                "numpy": pinned("2.3.0"),
                "nvidia-cublas-cu12": {**pinned("12.4.5.8"), **linux},
                "nvidia-cudnn-cu12": {**pinned("9.1.0.70"), **linux},
                "torch": pinned("2.13.0"),
                "triton": {**pinned("3.3.0"), **linux},
                "typing-extensions": pinned("4.12.2"),
            },
            "develop": {"smalldep": pinned("1.17.0")},
        },
        indent=4,
    )


@pytest.fixture(scope="module")
def pipenv_locked(
    lock_builds: Builds,
    module_app: AppFactory,
    lock_index: IndexServer,
    build_python: dict[str, str],
) -> Build:
    lock = pipfile_lock(lock_index.url, build_python["minor"])
    app_dir = module_app({"Pipfile.lock": lock}, name="pipenv-lock")
    return lock_builds.run(app_dir)


def test_pipfile_lock_builds_its_default_pins_with_cpu_torch(
    pipenv_locked: Build,
) -> None:
    installed = assert_locked_pins_with_cpu_torch(pipenv_locked)
    assert "smalldep" not in installed  # a develop package


def test_pipfile_lock_drops_every_cuda_package_next_to_torch(
    pipenv_locked: Build,
) -> None:
    # Pipfile.lock records no dependency edges, so torch is taken to need them all.
    assert cuda_names(distributions(pipenv_locked.image)) == []
    assert log_lines(pipenv_locked.output, r"dropped triton 3\.3\.0")
    assert cuda_files(pipenv_locked.pypi_downloads) == []


# --- A lock already made against the PyTorch CPU index --------------------------------

PYTORCH_CPU = "https://download.pytorch.org/whl/cpu"
CPU_PYPROJECT = """\
[project]
name = "mlapp"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = ["flask==3.0.3", "torch==2.13.0"]

[[tool.uv.index]]
name = "pytorch-cpu"
url = "https://download.pytorch.org/whl/cpu"
explicit = true

[tool.uv.sources]
torch = { index = "pytorch-cpu" }
"""


def cpu_uv_lock(registry: str) -> str:
    pypi = f'source = {{ registry = "{registry}" }}'
    pytorch = f'source = {{ registry = "{PYTORCH_CPU}" }}'
    return f"""\
version = 1
revision = 2
requires-python = ">=3.9"

[[package]]
name = "filelock"
version = "3.16.1"
{pypi}

[[package]]
name = "flask"
version = "3.0.3"
{pypi}

[[package]]
name = "mlapp"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "flask" }},
    {{ name = "torch" }},
]

[package.metadata]
requires-dist = [
    {{ name = "flask", specifier = "==3.0.3" }},
    {{ name = "torch", specifier = "==2.13.0", index = "{PYTORCH_CPU}" }},
]

[[package]]
name = "torch"
version = "2.13.0+cpu"
{pytorch}
dependencies = [
    {{ name = "filelock" }},
    {{ name = "typing-extensions" }},
]

[[package]]
name = "typing-extensions"
version = "4.12.2"
{pypi}
"""


def test_lock_made_against_the_pytorch_index_uses_the_configured_cpu_index(
    lock_builds: Builds, app: AppFactory, lock_index: IndexServer
) -> None:
    # The public CPU index is never contacted (a dead HTTPS proxy would fail it).
    app_dir = app(
        {"pyproject.toml": CPU_PYPROJECT, "uv.lock": cpu_uv_lock(lock_index.url)}
    )

    build = lock_builds.run(app_dir, {"HTTPS_PROXY": "http://127.0.0.1:9"})

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert (installed["torch"], installed["filelock"]) == ("2.13.0+cpu", "3.16.1")
    assert build.cpu_downloads == ["torch-2.13.0+cpu-py3-none-any.whl"]
