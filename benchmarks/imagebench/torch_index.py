"""The benchmark's own PyTorch CPU index: the platform's stand-in plus a bumped torch.

The stand-in that platform/setup runs holds one real CPU torch (2.13.0+cpu). A torch
version bump needs a second one, so this module copies the stand-in's files (over
HTTP, so it does not depend on how the stand-in stores them), adds the same wheel
re-versioned to 2.13.1+cpu, and serves the lot with pypiserver on loopback. The
bumped wheel holds the same files under a new version, so to every contender a bump
is a real change of a ~190 MB package. Both are cached between runs.
"""

from __future__ import annotations

import html.parser
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .measure import free_port

BUMP_FROM = "2.13.0+cpu"
BUMP_TO = "2.13.1+cpu"


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def _links(url: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=60) as response:
        parser = _Links()
        parser.feed(response.read().decode())
    return [urllib.parse.urljoin(url, href) for href in parser.hrefs]


def mirror_index(simple_url: str, target: Path) -> list[Path]:
    """Download every file a PEP 503 index lists into ``target`` (kept if present)."""
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for project in _links(simple_url):
        for link in _links(project):
            name = urllib.parse.unquote(urllib.parse.urlsplit(link).path.split("/")[-1])
            path = target / name
            if not path.exists():
                partial = path.with_suffix(path.suffix + ".partial")
                with (
                    urllib.request.urlopen(link, timeout=600) as response,
                    partial.open("wb") as out,
                ):
                    shutil.copyfileobj(response, out, 1 << 20)
                partial.rename(path)
            files.append(path)
    return files


def bump_wheel(wheel: Path, new_version: str, wheel_tool: Path, target: Path) -> Path:
    """Re-version a wheel with the ``wheel`` tool: unpack, rename, edit, pack.

    The dist-info directory, METADATA's Version and torch's own ``version.py`` carry
    the new version; ``wheel pack`` writes a fresh RECORD.
    """
    old_version = wheel.name.split("-")[1]
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        subprocess.run(
            [str(wheel_tool), "unpack", "--dest", tmp, str(wheel)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        unpacked = next(Path(tmp).iterdir())
        project = unpacked.name.split("-")[0]
        dist_info = unpacked / f"{project}-{old_version}.dist-info"
        new_dist_info = unpacked / f"{project}-{new_version}.dist-info"
        dist_info.rename(new_dist_info)
        metadata = new_dist_info / "METADATA"
        metadata.write_text(
            re.sub(
                r"^Version: .*$",
                f"Version: {new_version}",
                metadata.read_text(),
                count=1,
                flags=re.M,
            )
        )
        version_py = unpacked / project / "version.py"
        if version_py.exists():
            version_py.write_text(
                version_py.read_text().replace(old_version, new_version)
            )
        subprocess.run(
            [str(wheel_tool), "pack", "--dest-dir", str(target), str(unpacked)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return next(target.glob(f"{project}-{new_version}-*.whl"))


class TorchIndex:
    """The stand-in's files plus the bumped torch, served by pypiserver."""

    def __init__(self, cache: Path, stand_in_url: str, dev_venv: Path, log: Path):
        self.directory = cache / "torch-index"
        self.stand_in_url = stand_in_url
        self.dev_venv = dev_venv
        self.log = log
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def prepare(self) -> None:
        files = mirror_index(self.stand_in_url, self.directory)
        torch = [f for f in files if f.name.startswith(f"torch-{BUMP_FROM}-")]
        if not torch:
            raise RuntimeError(f"the CPU index stand-in has no torch {BUMP_FROM}")
        if not list(self.directory.glob(f"torch-{BUMP_TO}-*.whl")):
            bump_wheel(torch[0], BUMP_TO, self.dev_venv / "bin/wheel", self.directory)

    def start(self) -> TorchIndex:
        self.port = free_port()
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [
                    str(self.dev_venv / "bin/pypi-server"),
                    "run",
                    "--interface",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--disable-fallback",
                    "--authenticate",
                    ".",
                    "--passwords",
                    ".",
                    str(self.directory),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                _links(self.url)
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.3)
        raise RuntimeError(f"the benchmark torch index did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
