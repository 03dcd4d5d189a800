"""End-to-end fixtures: real pack, lifecycle and Docker, as platform/setup leaves them.

These tests need the local platform (``platform/setup``); ``scripts/test`` runs it
first. Without it they fail rather than skip: a skipped end-to-end suite would hide
that the buildpack was never built for real. ``-m "not e2e"`` deselects them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"
BUILDPACK_ID = "mlstack/python-ml"


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


@dataclass
class PackBuild:
    image: str
    output: str
    returncode: int

    def check(self) -> PackBuild:
        assert self.returncode == 0, f"pack build failed:\n{self.output[-6000:]}"
        return self


class Pack:
    """Runs ``pack build`` with the flags every build on this platform needs."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def build(
        self,
        image: str,
        app_dir: Path,
        build_env: Mapping[str, str] | None = None,
        clear_cache: bool = False,
    ) -> PackBuild:
        args = [
            "pack",
            "build",
            image,
            "--path",
            str(app_dir),
            "--buildpack",
            str(REPO_ROOT),
            *self.env["MLBP_PACK_BUILD_ARGS"].split(),
            "--env",
            f"BP_ML_TORCH_INDEX_URL={self.env['MLBP_CPU_INDEX_URL']}",
        ]
        for name, value in (build_env or {}).items():
            args += ["--env", f"{name}={value}"]
        if clear_cache:
            args.append("--clear-cache")
        done = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=1800
        )
        return PackBuild(image, done.stdout + done.stderr, done.returncode)

    def docker(self, *args: str, check: bool = True, timeout: int = 600) -> str:
        done = subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def remove_image(self, image: str) -> None:
        self.docker("rmi", "-f", image, check=False)

    def layer_digests(self, image: str) -> dict[str, str]:
        """Our buildpack's layers in ``image``: layer name -> diffID (sha256)."""
        label = self.docker(
            "inspect",
            "--format",
            '{{index .Config.Labels "io.buildpacks.lifecycle.metadata"}}',
            image,
        )
        metadata = json.loads(label)
        for buildpack in metadata["buildpacks"]:
            if buildpack["key"] == BUILDPACK_ID:
                return {
                    name: layer["sha"] for name, layer in buildpack["layers"].items()
                }
        raise AssertionError(f"{image} has no layers of {BUILDPACK_ID}")

    def image_diff_ids(self, image: str) -> list[str]:
        return json.loads(
            self.docker("inspect", "--format", "{{json .RootFS.Layers}}", image)
        )

    def in_image(self, image: str, *argv: str) -> str:
        """Run ``argv`` in ``image`` with the launch environment, as the app runs."""
        return self.docker(
            "run", "--rm", "--entrypoint", "/cnb/lifecycle/launcher", image, "--", *argv
        )

    def python(self, image: str, code: str) -> str:
        return self.in_image(image, "python", "-c", code).strip()


@pytest.fixture(scope="session")
def pack(platform_env: dict[str, str]) -> Pack:
    return Pack(platform_env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningApp:
    url: str
    name: str

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def post(self, path: str, body: object) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


@pytest.fixture
def run_app(pack: Pack) -> Iterator:
    """Start an image with ``docker run`` and wait until ``/health`` answers."""
    started: list[str] = []

    def start(
        image: str, env: Mapping[str, str] | None = None, wait_s: int = 180
    ) -> RunningApp:
        port = _free_port()
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


def pip_wheel(directory: Path) -> Path:
    """pip's own wheel, to run ``pip check`` in an image that has no pip."""
    directory.mkdir(parents=True, exist_ok=True)
    found = sorted(directory.glob("pip-*.whl"))
    if not found:
        subprocess.run(
            [
                "python3",
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                str(directory),
                "pip==26.3",
            ],
            check=True,
            env={**os.environ, "PIP_FIND_LINKS": ""},
        )
        found = sorted(directory.glob("pip-*.whl"))
    return found[-1]
