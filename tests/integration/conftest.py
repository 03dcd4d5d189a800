"""Fixtures for integration tests: build apps with our buildpack, without pack.

- ``app(files, name="app") -> Path`` writes an app directory (text is dedented).
- ``build_env`` is the ``pack build --env`` set every build gets: PIP_INDEX_URL at
  the PyPI stand-in, BP_ML_TORCH_INDEX_URL at the CPU-index stand-in, and the host's
  SSL_CERT_FILE. To change it for a test, edit ``buildpack.platform_env`` or pass
  ``env=`` to a run, which is laid over it (a value of None removes a variable).
- ``buildpack`` is a :class:`support.lifecycle.Lifecycle` bound to the repo root:
  ``buildpack.run_detect(app_dir, env)``, ``buildpack.run_build(app_dir, env,
  previous)``. It clears the request logs of ``pypi_index`` and ``cpu_index``, so
  their ``downloads()`` cover this test only.
- ``pypi_index``, ``private_pypi_index``, ``cpu_index``, ``make_index``,
  ``wheel_factory``, ``build_image_env``: see ``tests/support/fixtures.py``.

A rebuild is ``buildpack.run_build(app_dir, previous=first)``, where ``first`` is
the earlier :class:`support.lifecycle.BuildResult` (its image and cache carry over).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from buildkit import Builds, write_files
from support import fixtures
from support.index import IndexServer
from support.lifecycle import Cache, Lifecycle

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent

AppFactory = Callable[..., Path]


def pytest_configure(config: pytest.Config) -> None:
    fixtures.register(config)


@pytest.fixture
def app(tmp_path: Path) -> AppFactory:
    """``app({"requirements.txt": "torch==2.13.0\\n"}, name="app") -> Path``."""

    def make(files: Mapping[str, str | bytes], name: str = "app") -> Path:
        directory = tmp_path / "apps" / name
        directory.mkdir(parents=True, exist_ok=True)
        for relative, content in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
        return directory

    return make


@pytest.fixture
def build_env(pypi_index: IndexServer, cpu_index: IndexServer) -> dict[str, str]:
    env = {
        "PIP_INDEX_URL": pypi_index.url,
        "BP_ML_TORCH_INDEX_URL": cpu_index.url,
    }
    # The lifecycle drops SSL_CERT_FILE from the build image's environment; a
    # platform passes it with --env, as here.
    if os.environ.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
    return env


@pytest.fixture
def buildpack(
    tmp_path: Path,
    build_image_env: dict[str, str],
    build_env: dict[str, str],
    pypi_index: IndexServer,
    cpu_index: IndexServer,
) -> Lifecycle:
    pypi_index.clear_log()
    cpu_index.clear_log()
    return Lifecycle(
        REPO_ROOT,
        tmp_path / "cnb",
        outer_env=build_image_env,
        platform_env=build_env,
    )


# --- Shared builds ---------------------------------------------------------------
#
# Most tests are not about installing uv, and a cold build spends most of its time
# there (pip fetching and unpacking the uv wheel). ``warm_uv_cache`` is the build
# cache of one finished build, which holds the ``uv`` layer; builds made through
# ``builds`` start from it unless they rebuild over an earlier result, the way any
# builder's cache holds uv after its first build. Tests that need a truly cold
# build use ``buildpack`` or pass ``cache=None`` to ``Builds.run``.
#
# ``builds`` is module-scoped, so one module can build an app once and share the
# image among its tests. Each build records what the two stand-in indexes served
# during that build.


@pytest.fixture(scope="session")
def standin_env(pypi_index: IndexServer, cpu_index: IndexServer) -> dict[str, str]:
    """``build_env`` for session- and module-scoped fixtures."""
    env = {
        "PIP_INDEX_URL": pypi_index.url,
        "BP_ML_TORCH_INDEX_URL": cpu_index.url,
    }
    if os.environ.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
    return env


@pytest.fixture(scope="session")
def warm_uv_cache(
    tmp_path_factory: pytest.TempPathFactory,
    build_image_env: dict[str, str],
    standin_env: dict[str, str],
) -> Cache:
    root = tmp_path_factory.mktemp("uv-cache-build")
    app_dir = root / "app"
    app_dir.mkdir()
    (app_dir / "requirements.txt").write_text("smalldep==1.17.0\n")
    lifecycle = Lifecycle(
        REPO_ROOT, root / "cnb", outer_env=build_image_env, platform_env=standin_env
    )
    result = lifecycle.run_build(app_dir, {"BP_ML_FORCE_DETECT": "true"})
    assert result.cache is not None and "uv" in result.cache.layers, (
        result.describe_failure()
    )
    return result.cache


@pytest.fixture(scope="module")
def builds(
    tmp_path_factory: pytest.TempPathFactory,
    build_image_env: dict[str, str],
    standin_env: dict[str, str],
    warm_uv_cache: Cache,
    pypi_index: IndexServer,
    cpu_index: IndexServer,
) -> Builds:
    lifecycle = Lifecycle(
        REPO_ROOT,
        tmp_path_factory.mktemp("cnb"),
        outer_env=build_image_env,
        platform_env=standin_env,
    )
    return Builds(lifecycle, warm_uv_cache, pypi_index, cpu_index)


@pytest.fixture(scope="module")
def module_app(tmp_path_factory: pytest.TempPathFactory) -> AppFactory:
    """``app`` for module-scoped fixtures: each call writes a new directory."""
    root = tmp_path_factory.mktemp("apps")

    def make(files: Mapping[str, str | bytes], name: str = "app") -> Path:
        directory = root / name
        directory.mkdir(parents=True)
        write_files(directory, files)
        return directory

    return make


@pytest.fixture(scope="session")
def build_python(build_image_env: dict[str, str]) -> dict[str, str]:
    """The build image's python3: ``version`` (3.11.7), ``minor`` (3.11), ``abi``."""
    code = (
        "import json, sys; v = sys.version_info; print(json.dumps({"
        "'version': '%d.%d.%d' % v[:3], 'minor': '%d.%d' % v[:2], "
        "'abi': 'cp%d%d' % v[:2]}))"
    )
    done = subprocess.run(
        ["python3", "-c", code],
        env={"PATH": build_image_env["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)
