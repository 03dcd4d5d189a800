"""End-to-end fixtures: real pack, lifecycle and Docker, as platform/setup leaves them.

These tests need the local platform (``platform/setup``); ``scripts/test`` runs it
first. Without it they fail rather than skip: a skipped end-to-end suite would hide
that the buildpack was never built for real. ``-m "not e2e"`` deselects them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from support.packcli import REPO_ROOT, SAMPLES, Pack, RunningApp, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def platform_env() -> dict[str, str]:
    """The variables platform/env.sh exports (PATH with pack, builder, CPU index)."""
    script = f'. "{REPO_ROOT}/platform/env.sh" && env -0'
    done = subprocess.run(["bash", "-c", script], capture_output=True, check=True)
    env = dict(
        entry.split("=", 1)
        for entry in done.stdout.decode().split("\0")
        if "=" in entry
    )
    for tool in ("pack", "docker"):
        if shutil.which(tool, path=env["PATH"]) is None:
            pytest.fail(f"{tool} is not installed: run platform/setup first")
    return env


@pytest.fixture(scope="session")
def pack(platform_env: dict[str, str]) -> Pack:
    return Pack(platform_env)


@pytest.fixture
def run_app(pack: Pack) -> Iterator:
    """Start an image with ``docker run`` and wait until ``/health`` answers."""
    started: list[str] = []

    def start(
        image: str, env: Mapping[str, str] | None = None, wait_s: int = 180
    ) -> RunningApp:
        port = free_port()
        name = f"mlbp-e2e-{port}"
        args = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        pack.docker(*args, image)
        started.append(name)
        app = RunningApp(f"http://127.0.0.1:{port}", name)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                app.get("/health")
                return app
            except OSError:
                time.sleep(1)
        logs = pack.docker("logs", name, check=False)
        raise AssertionError(f"{image} did not answer within {wait_s}s:\n{logs}")

    yield start
    for name in started:
        pack.docker("rm", "-f", name, check=False)


@pytest.fixture
def copy_sample(tmp_path: Path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(SAMPLES / name, target)
        return target

    return copy
