"""The interpreter the app will run on, and whether it is the one the app asks for.

The buildpack installs no Python of its own: it uses the ``python3`` of the build
environment, which is the build image's or a runtime buildpack's that ran before us
(Paketo cpython, Google's python runtime, Heroku's python). That interpreter's
version, ABI and platform go into every layer's key.
"""

from __future__ import annotations

import sys
import sysconfig
from dataclasses import dataclass
from typing import Dict

from packaging.tags import sys_tags

from .errors import BuildpackError


@dataclass(frozen=True)
class PythonInfo:
    """What identifies the interpreter for the purpose of reusing installed files."""

    executable: str
    version: str
    abi: str
    platform: str

    @classmethod
    def current(cls) -> PythonInfo:
        """Describe the interpreter running this code (the build's python3)."""
        best = next(iter(sys_tags()))
        return cls(
            executable=sys.executable,
            version=".".join(str(part) for part in sys.version_info[:3]),
            abi=best.abi,
            platform=best.platform
            if best.platform != "any"
            else sysconfig.get_platform(),
        )

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def key(self) -> Dict[str, str]:
        """The fields a layer records; a change of any of them rebuilds the layer."""
        return {
            "python": self.version,
            "abi": self.abi,
            "platform": self.platform,
            "interpreter": self.executable,
        }


def check_request(python: PythonInfo, request) -> None:
    """Raise BuildpackError when the app asks for a Python this one is not.

    ``request`` is a ``declared.PythonRequest``: the text the app wrote (in
    ``.python-version``, ``runtime.txt`` or ``requires-python``), the same as a PEP 440
    specifier set, and where it was written.
    """
    if request.specifier.contains(python.version, prereleases=True):
        return
    raise BuildpackError(
        "The app asks for another Python",
        f"The app asks for Python {request.text}, but the build environment's python3 "
        f"is {python.version} ({python.executable}). This buildpack uses the Python "
        f"that the builder or a runtime buildpack provides; it does not install one.",
        f"Change the request to match {python.minor}, or build with a builder (or a "
        f"Python runtime buildpack before this one) that provides Python "
        f"{request.text}.",
        origin=request.origin,
    )
