"""The build log: headings, indented steps with durations, one summary table.

The shape follows what a person scanning a CI log needs: one ``[Heading]`` per
stage, two-space steps under it, four-space lines for commands we run, and tool
output indented below those. Every step that takes time ends with its duration.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import IO, Iterator, List, Optional, Sequence

from .indexes import redact_text


def format_size(num_bytes: Optional[int]) -> str:
    """Return a human size such as ``181.4 MB``; ``-`` for an unknown size."""
    if num_bytes is None:
        return "-"
    size = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover - loop always returns


def format_duration(seconds: float) -> str:
    """Return ``0.42s`` under a minute, ``2m05s`` above."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


class Log:
    """Writes the build log to a stream (stdout by default)."""

    def __init__(self, stream: Optional[IO[str]] = None, debug: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.debug_enabled = debug

    def _write(self, text: str) -> None:
        # Every line of the log has URL credentials cut out here, so the callers
        # log URLs and tool output as they are.
        self.stream.write(redact_text(text) + "\n")
        self.stream.flush()

    def header(self, title: str) -> None:
        """Start a stage of the build."""
        self._write(f"\n[{title}]")

    def step(self, text: str) -> None:
        """Say one thing that happened in the current stage."""
        self._write(f"  {text}")

    def detail(self, text: str) -> None:
        """A line under a step: a reason, a changed key, a command."""
        self._write(f"    {text}")

    def tool_output(self, text: str) -> None:
        """Output of a tool we ran, indented under the command."""
        for line in text.rstrip("\n").splitlines():
            self._write(f"      {line}")

    def warning(self, title: str, text: str) -> None:
        """A problem the build survives but the user should fix."""
        self._write(f"\n[Warning: {title}]")
        for line in text.rstrip("\n").splitlines():
            self._write(line)

    def debug(self, text: str) -> None:
        """Only shown with BP_ML_DEBUG=true."""
        if self.debug_enabled:
            self._write(f"    debug: {text}")

    @contextmanager
    def timed(self, text: str) -> Iterator[None]:
        """Log ``text``, run the block, then log ``Done (1.23s)`` under it."""
        self.step(text)
        started = time.monotonic()
        yield
        self.detail(f"Done ({format_duration(time.monotonic() - started)})")

    def table(self, headings: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A plain-text table, columns padded to their widest cell."""
        cells: List[Sequence[str]] = [headings, *rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headings))]
        for index, row in enumerate(cells):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths))
            self.step(line.rstrip())
            if index == 0:
                self.step("  ".join("-" * width for width in widths))
