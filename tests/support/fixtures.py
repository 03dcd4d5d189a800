"""pytest fixtures for the harness, registered as a plugin by :func:`register`.

Session-scoped: ``build_image_env`` (the build container's environment),
``wheel_factory``, ``pypi_index`` (the PyPI stand-in, with the real
uv wheel), ``private_pypi_index`` (the same files behind basic auth) and
``cpu_index`` (the PyTorch CPU index stand-in). Per test: ``make_index`` for an
index of a test's own wheels.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from .index import IndexServer
from .wheels import (
    WheelFactory,
    WheelSpec,
    cpu_index_wheels,
    pypi_wheels,
    real_uv_wheel,
)

MakeIndex = Callable[..., IndexServer]

_PLUGIN_NAME = "mlbp-test-support"


def register(config: pytest.Config) -> None:
    """Make these fixtures visible to every test; call from ``pytest_configure``.

    Registering the module once as a plugin (instead of importing the fixtures
    into each conftest) gives one instance of each session fixture even when
    tests/support and tests/integration run together.
    """
    if not config.pluginmanager.has_plugin(_PLUGIN_NAME):
        config.pluginmanager.register(sys.modules[__name__], _PLUGIN_NAME)


# System directories a Debian build image has on PATH.
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def python_bin_dir(directory: Path) -> Path:
    """Make ``directory`` hold ``python``, ``python3`` and ``python3.X`` links.

    They point at the base interpreter of the Python running the tests (never the
    dev venv, whose packages must not leak into builds), or at
    ``$MLBP_TEST_PYTHON``. A directory of just these links keeps the rest of that
    interpreter's ``bin`` (pyenv's scripts such as ``flask``) off the build PATH.
    """
    python = os.environ.get("MLBP_TEST_PYTHON") or str(
        getattr(sys, "_base_executable", sys.executable)
    )
    real = Path(python).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(
        [str(real), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    for name in ("python", "python3", f"python{version}"):
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(real)
    return directory


def outer_build_env(python_bin: Path) -> dict[str, str]:
    """The build container's environment, before the lifecycle filters it.

    PATH is ``python_bin`` (see :func:`python_bin_dir`) ahead of the system
    directories, like a build image with Python installed. No pyenv shims: they
    break when the lifecycle gives the build its own HOME. Proxies pass through as
    the lifecycle lets them, with loopback exempted so the test indexes are reached
    directly.
    """
    env = {
        "PATH": f"{python_bin}:{_SYSTEM_PATH}",
        "HOME": os.environ.get("HOME", "/root"),
        "HOSTNAME": os.environ.get("HOSTNAME", "localhost"),
    }
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if any(name.lower().endswith("proxy") for name in env):
        no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
        exempt = ",".join(filter(None, [no_proxy, "127.0.0.1", "localhost"]))
        env["NO_PROXY"] = env["no_proxy"] = exempt
    return env


@pytest.fixture(scope="session")
def build_image_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """:func:`outer_build_env` with a session's own python links directory."""
    return outer_build_env(python_bin_dir(tmp_path_factory.mktemp("python-bin")))


@pytest.fixture(scope="session")
def wheel_factory() -> WheelFactory:
    return WheelFactory()


def _index_dir(
    factory: WheelFactory, root: Path, specs: Iterable[WheelSpec], with_uv: bool
) -> Path:
    factory.populate(root, specs)
    if with_uv:
        uv = real_uv_wheel(factory.cache_dir)
        shutil.copyfile(uv, root / uv.name)
    return root


@pytest.fixture(scope="session")
def pypi_index(
    wheel_factory: WheelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexServer]:
    """The PyPI stand-in: :func:`pypi_wheels` plus the real uv wheel, no auth."""
    root = _index_dir(
        wheel_factory, tmp_path_factory.mktemp("pypi"), pypi_wheels(), True
    )
    with IndexServer(root) as index:
        yield index


@pytest.fixture(scope="session")
def private_pypi_index(pypi_index: IndexServer) -> Iterator[IndexServer]:
    """The PyPI stand-in's files behind basic auth.

    The password is random per session and distinctive, so a test can search
    logs and layer metadata for it: ``private_pypi_index.password``.
    """
    password = f"s3cr3t-{secrets.token_hex(8)}"
    with IndexServer(pypi_index.root, username="mlbp-user", password=password) as index:
        yield index


@pytest.fixture(scope="session")
def cpu_index(
    wheel_factory: WheelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexServer]:
    """The PyTorch CPU index stand-in: :func:`cpu_index_wheels`, no auth."""
    root = _index_dir(
        wheel_factory, tmp_path_factory.mktemp("cpu"), cpu_index_wheels(), False
    )
    with IndexServer(root) as index:
        yield index


@pytest.fixture
def make_index(
    wheel_factory: WheelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MakeIndex]:
    """Start an index of a test's own wheels: ``make_index(specs, with_uv=False,
    username=None, password=None)``; stopped when the test ends."""
    started: list[IndexServer] = []

    def make(
        specs: Iterable[WheelSpec],
        *,
        with_uv: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> IndexServer:
        root = _index_dir(
            wheel_factory, tmp_path_factory.mktemp("index"), specs, with_uv
        )
        index = IndexServer(root, username=username, password=password).start()
        started.append(index)
        return index

    yield make
    for index in started:
        index.stop()
