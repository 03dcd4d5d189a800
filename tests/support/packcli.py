"""pack and Docker, driven from tests: builds, image inspection, running apps.

Used by the end-to-end tests (tests/e2e) and the benchmark smoke test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"
BUILDPACK_ID = "mlstack/python-ml"
_DAEMON_SAVE_EOF = "failed to fetch base layers: saving image"


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
        output = done.stdout + done.stderr
        if done.returncode != 0 and _DAEMON_SAVE_EOF in output:
            # Docker 20.10 sometimes drops the exporter's `docker save` of the run
            # image with EOF while another client loads or pushes images; the
            # buildpack's part had finished. One retry; the log keeps both runs.
            done = subprocess.run(
                args, env=self.env, capture_output=True, text=True, timeout=1800
            )
            output += "\n--- retried after a daemon EOF ---\n"
            output += done.stdout + done.stderr
        return PackBuild(image, output, done.returncode)

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


def free_port() -> int:
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
