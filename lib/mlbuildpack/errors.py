"""The one place where user-facing failures are described.

Every failure a user can act on is a :class:`BuildpackError` with a title, a cause
that names the file and line where one is known, and the fix. ``bin/build`` and
``bin/detect`` print it and exit non-zero; nothing else in the code prints errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .indexes import redact_text


@dataclass(frozen=True)
class Origin:
    """Where something was declared: a file and, when known, a 1-based line number."""

    path: Path
    line: Optional[int] = None

    def describe(self, root: Optional[Path] = None) -> str:
        """Return ``path:line`` with the path relative to ``root`` when possible."""
        path = self.path
        if root is not None:
            try:
                path = path.relative_to(root)
            except ValueError:
                pass
        return f"{path}:{self.line}" if self.line else str(path)


class BuildpackError(Exception):
    """A failure the user can fix, told as title, cause and fix.

    ``user_error`` says whose fault it is: True for bad input or an unsupported
    request, False for a fault of the buildpack or of a tool it ran.
    """

    def __init__(
        self,
        title: str,
        cause: str,
        fix: str,
        origin: Optional[Origin] = None,
        user_error: bool = True,
    ) -> None:
        super().__init__(title)
        self.title = title
        self.cause = cause
        self.fix = fix
        self.origin = origin
        self.user_error = user_error

    def render(self, root: Optional[Path] = None) -> str:
        """Return the message as the build log shows it."""
        where = ""
        if self.origin:
            # After a cause of several lines (a line quoted with a caret under the
            # fault), the place goes on a line of its own.
            gap = "\n" if "\n" in self.cause else " "
            where = f"{gap}({self.origin.describe(root)})"
        kind = "" if self.user_error else " [buildpack fault: please report it]"
        # Causes quote the app's lines and tools' output as they are; credentials in
        # their URLs are cut out here, where every error is shown.
        return redact_text(
            f"[Error: {self.title}]{kind}\n"
            f"{self.cause}{where}\n"
            f"\n"
            f"What to do: {self.fix}\n"
        )
