"""Clocks and gauges: timed commands with timestamped output, disk sampling, and the
time an image takes from ``docker run`` to its first answered request."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .docker import DATA_ROOT, docker


class CommandFailed(RuntimeError):
    """A measured command exited non-zero; the message holds the log's tail."""


@dataclass
class Timed:
    """A command's wall time and when (seconds from its start) each mark appeared."""

    seconds: float
    marks: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def run_timed(
    args: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    marks: Sequence[str] = (),
) -> Timed:
    """Run ``args``, appending its output with timestamps to ``log``.

    Each line is stamped as it arrives, so the first line holding a mark tells when a
    phase began (pack prints ``===> EXPORTING``). Raises CommandFailed on a non-zero
    exit.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[str, float] = {}
    lines: list[str] = []
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n")
        process = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic() - started
            out.write(f"[{now:8.2f}] {line}")
            lines.append(line.rstrip("\n"))
            for mark in marks:
                if mark not in seen and mark in line:
                    seen[mark] = now
        code = process.wait()
        seconds = time.monotonic() - started
        out.write(f"[{seconds:8.2f}] exit {code}\n")
    if code != 0:
        tail = "\n".join(lines[-40:])
        raise CommandFailed(f"{' '.join(args[:3])} ... exited {code}:\n{tail}")
    return Timed(seconds, seen, lines)


def disk_used(path: Path = DATA_ROOT) -> int:
    """Bytes in use on the filesystem holding ``path``."""
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def tree_bytes(path: Path) -> int:
    """Apparent size of every file under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


class DiskSampler:
    """Samples the disk in use every ``interval`` seconds while a build runs.

    The Docker data root holds the daemon's layers, BuildKit's cache and pack's build
    and cache volumes; here it shares one filesystem with everything else, so the
    sample is that filesystem's use minus whatever ``exclude`` reports (the loopback
    registry's storage, whose growth is counted as pushed bytes instead).
    """

    def __init__(
        self, exclude: Callable[[], int] | None = None, interval: float = 0.5
    ) -> None:
        self.exclude = exclude or (lambda: 0)
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        return disk_used() - self.exclude()

    def _record(self) -> None:
        used = self._sample()
        self.samples.append((time.monotonic() - self._started, used - self.baseline))
        self.peak = max(self.peak, used)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def __enter__(self) -> DiskSampler:
        self._started = time.monotonic()
        self.baseline = self._sample()
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._record()

    def peak_before(self, seconds: float | None) -> int | None:
        """The highest growth sampled before ``seconds`` into the build."""
        if seconds is None:
            return None
        return max((used for t, used in self.samples if t < seconds), default=0)

    def write_csv(self, path: Path) -> None:
        """The samples as ``seconds,bytes above the start`` (to line up with the
        timestamps in the build log)."""
        lines = ["seconds,bytes"] + [f"{t:.1f},{used}" for t, used in self.samples]
        path.write_text("\n".join(lines) + "\n")

    @property
    def peak_growth(self) -> int:
        """The most the disk in use grew above its value at the start, in bytes."""
        return max(0, self.peak - self.baseline)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_first_request(
    image: str, path: str = "/health", timeout: float = 300
) -> float:
    """Seconds from ``docker run -d`` to the first 200 answer to ``path``."""
    port = free_port()
    name = f"mlbp-bench-ttfr-{port}"
    started = time.monotonic()
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", image)
    try:
        while time.monotonic() - started < timeout:
            try:
                url = f"http://127.0.0.1:{port}{path}"
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        logs = docker("logs", "--tail", "30", name, check=False)
        raise CommandFailed(f"{image} did not answer {path} in {timeout}s:\n{logs}")
    finally:
        docker("rm", "-f", name, check=False)
