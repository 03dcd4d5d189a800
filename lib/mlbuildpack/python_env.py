"""The interpreter the app will run on, and whether it is the one the app asks for.

The buildpack installs no Python of its own: it uses the ``python3`` of the build
environment, which is the build image's or a runtime buildpack's that ran before us
(Paketo cpython, Google's python runtime, Heroku's python). That interpreter's
version, ABI and platform go into every layer's key.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from dataclasses import dataclass
from typing import Dict, Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import sys_tags

from .errors import BuildpackError, Origin


@dataclass(frozen=True)
class PythonInfo:
    """What identifies the interpreter for the purpose of reusing installed files."""

    executable: str
    version: str
    abi: str
    platform: str

    @classmethod
    def current(cls) -> "PythonInfo":
        """Describe the interpreter running this code (the build's python3)."""
        best = next(iter(sys_tags()))
        return cls(
            executable=sys.executable,
            version=".".join(str(part) for part in sys.version_info[:3]),
            abi=best.abi,
            platform=best.platform if best.platform != "any" else sysconfig.get_platform(),
        )

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def key(self) -> Dict[str, str]:
        """The fields a layer records; a change of any of them rebuilds the layer."""
        return {"python": self.version, "abi": self.abi, "platform": self.platform,
                "interpreter": self.executable}


_RUNTIME_TXT = re.compile(r"^python-(\d+(?:\.\d+){0,2})$")


def check_request(python: PythonInfo, request: Optional[str], origin: Optional[Origin]
                  ) -> None:
    """Raise BuildpackError when the app asks for a Python this one is not.

    ``request`` is what the app wrote: ``3.11`` or ``3.11.4`` (``.python-version``),
    ``python-3.11.4`` (``runtime.txt``), or a specifier such as ``>=3.10,<3.13``
    (``requires-python``). A bare version matches on the parts it gives.
    """
    if not request:
        return
    text = request.strip()
    runtime = _RUNTIME_TXT.match(text)
    if runtime:
        text = runtime.group(1)
    if re.fullmatch(r"\d+(\.\d+){0,2}", text):
        wanted = text.split(".")
        have = python.version.split(".")[: len(wanted)]
        if wanted == have:
            return
        described = text
    else:
        try:
            specifier = SpecifierSet(text)
        except InvalidSpecifier:
            raise BuildpackError(
                "Unreadable Python version request",
                f"{request!r} is neither a version like 3.11 nor a specifier like >=3.10.",
                "Write a version such as 3.11 (in .python-version) or a PEP 440 "
                "specifier (in requires-python).",
                origin=origin,
            ) from None
        if specifier.contains(python.version, prereleases=True):
            return
        described = str(specifier)
    raise BuildpackError(
        "The app asks for another Python",
        f"The app asks for Python {described}, but the build environment's python3 "
        f"is {python.version} ({python.executable}). This buildpack uses the Python "
        f"that the builder or a runtime buildpack provides; it does not install one.",
        f"Change the request to match {python.minor}, or build with a builder (or a "
        f"Python runtime buildpack before this one) that provides Python {described}.",
        origin=origin,
    )
