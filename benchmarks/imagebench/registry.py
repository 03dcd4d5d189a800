"""A Docker registry on loopback (Debian's ``docker-registry``), counting what arrives.

Pushed bytes are measured on the registry's side: the blobs that are in its storage
after a push and were not before. A blob the registry already holds is not sent again
(the client asks first), so this is what travelled, compressed, whichever client
pushed. Docker treats 127.0.0.0/8 registries as insecure by default, so plain HTTP is
enough for ``docker push``; pack is told with ``--insecure-registry``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .measure import free_port

CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: mlbp-benchmark-only
"""

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def registry_binary() -> str:
    found = shutil.which("docker-registry") or shutil.which("registry")
    if found is None:
        raise RuntimeError(
            "no docker-registry on PATH: apt-get install docker-registry (Debian)"
        )
    return found


@dataclass
class Registry:
    """One registry process serving ``storage`` on a free loopback port."""

    storage: Path
    log: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.storage.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = self.log.with_suffix(".yml")
        config.write_text(CONFIG.format(storage=self.storage, port=self.port))
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [registry_binary(), "serve", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError(f"the registry did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def blobs(self) -> dict[str, int]:
        """Every blob in storage: digest -> stored (compressed) size."""
        root = self.storage / "docker/registry/v2/blobs/sha256"
        found = {}
        if root.is_dir():
            for data in root.glob("*/*/data"):
                found[data.parent.name] = data.stat().st_size
        return found

    def stored_bytes(self) -> int:
        return sum(self.blobs().values())

    def manifest(self, repository: str, tag: str = "latest") -> dict:
        request = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            headers={"Accept": MANIFEST_TYPES},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def image_bytes(self, repository: str, tag: str = "latest") -> int:
        """The compressed size of an image as stored: its layers and its config."""
        manifest = self.manifest(repository, tag)
        layers = sum(int(layer["size"]) for layer in manifest["layers"])
        return layers + int(manifest["config"]["size"])
