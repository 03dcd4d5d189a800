"""Docker as the benchmark sees it: the CLI, the daemon's API and its image store.

Layer sizes are read from the daemon's own layer store (``image/overlay2/layerdb``):
``docker history`` cannot tell an empty history entry from a layer, and pack's images
carry no history at all. Reading the store needs root, as the rest of the platform
does.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

DATA_ROOT = Path("/var/lib/docker")
LAYERDB = DATA_ROOT / "image/overlay2/layerdb/sha256"
IMAGEDB = DATA_ROOT / "image/overlay2/imagedb/content/sha256"


class DockerError(RuntimeError):
    """A docker command failed; the message holds its output."""


def docker(*args: str, check: bool = True, timeout: float = 3600) -> str:
    """Run the docker CLI and return its stdout."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def buildkit_client() -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``docker build`` with BuildKit.

    A docker CLI with the buildx plugin builds with BuildKit by default. The CLI
    Debian's docker.io installs (20.10) has BuildKit built in behind DOCKER_BUILDKIT;
    newer CLIs without the plugin only offer the legacy builder, which cannot use a
    registry image's inline cache.
    """
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    has_buildx = (
        subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode
        == 0
    )
    if has_buildx:
        return ["docker", "build"], env
    for candidate in ("/usr/bin/docker", shutil.which("docker") or "docker"):
        version = subprocess.run(
            [candidate, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if version.startswith(("18.", "19.", "20.", "22.")):
            return [candidate, "build"], env
    raise DockerError("no docker CLI here can build with BuildKit")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def api_get(path: str, timeout: float = 600) -> object:
    """GET from the daemon's API (version 1.41, what Docker 20.10 speaks)."""
    connection = _UnixConnection("/var/run/docker.sock", timeout)
    try:
        connection.request("GET", f"/v1.41{path}")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise DockerError(f"GET {path}: {response.status} {body[:300]!r}")
    return json.loads(body)


@dataclass(frozen=True)
class Layer:
    """One layer of an image: what made it, its diffID, its size unpacked."""

    name: str
    diff_id: str
    size: int


def image_id(reference: str) -> str | None:
    out = docker("image", "inspect", "--format", "{{.Id}}", reference, check=False)
    return out.strip() or None


def image_config(reference: str) -> dict:
    """The image's config blob (with ``history`` and ``rootfs``), from the store."""
    found = image_id(reference)
    if found is None:
        raise DockerError(f"no image {reference}")
    return json.loads((IMAGEDB / found.split(":", 1)[1]).read_text())


def diff_ids(reference: str) -> list[str]:
    return list(image_config(reference)["rootfs"]["diff_ids"])


def chain_ids(diffs: list[str]) -> list[str]:
    """The layer store's keys for a stack of diffIDs (the OCI ChainID rule)."""
    chain: list[str] = []
    for diff in diffs:
        if not chain:
            chain.append(diff)
        else:
            text = f"{chain[-1]} {diff}".encode()
            chain.append("sha256:" + hashlib.sha256(text).hexdigest())
    return chain


def chain_size(chain: str) -> int:
    """The unpacked size of one layer in the store, by its chainID."""
    return int((LAYERDB / chain.split(":", 1)[1] / "size").read_text())


def layer_sizes(reference: str) -> list[int]:
    """Each layer's unpacked size in bytes, bottom first, as the daemon stored it."""
    return [chain_size(chain) for chain in chain_ids(diff_ids(reference))]


def layers_disk_usage(reference: str, indexes: list[int]) -> int:
    """Blocks on disk (``du``) of the chosen layers' unpacked directories."""
    chains = chain_ids(diff_ids(reference))
    dirs = []
    for index in indexes:
        cache_id = (LAYERDB / chains[index].split(":", 1)[1] / "cache-id").read_text()
        dirs.append(str(DATA_ROOT / "overlay2" / cache_id.strip() / "diff"))
    if not dirs:
        return 0
    out = subprocess.run(
        ["du", "-s", "-B1", "-c", *dirs], capture_output=True, text=True, check=True
    ).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def label(reference: str, key: str) -> str | None:
    labels = image_config(reference).get("config", {}).get("Labels") or {}
    return labels.get(key)


def remove_images(*references: str) -> None:
    for reference in references:
        docker("image", "rm", "-f", reference, check=False)


def remove_volumes(*names: str) -> None:
    for name in names:
        docker("volume", "rm", "-f", name, check=False)


def server_version() -> str:
    return docker("version", "--format", "{{.Server.Version}}").strip()
