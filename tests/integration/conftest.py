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

import os
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from support import fixtures
from support.index import IndexServer
from support.lifecycle import Lifecycle

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
