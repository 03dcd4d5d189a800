"""Checks run against a built image: what is installed, where, and whether it holds.

Everything here looks at the image the way a user would: it runs the image's own
``python`` in the launch environment, or reads the files of its layers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support.lifecycle import Image

_DISTRIBUTIONS = """
import importlib.metadata as metadata, json
print(json.dumps([
    [d.metadata["Name"], d.version, d.requires or []]
    for d in metadata.distributions()
]))
"""


def run_python(image: Image, code: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``python -c code`` at launch; return its stdout, failing on an error."""
    done = image.run(["python", "-c", code], env=env)
    assert done.returncode == 0, f"python at launch failed:\n{done.stderr}"
    return done.stdout


def distributions(image: Image) -> dict[str, str]:
    """Every distribution ``importlib.metadata`` finds at launch: name -> version."""
    return {name: version for name, version, _ in _distribution_rows(image)}


def _distribution_rows(image: Image) -> list[tuple[str, str, list[str]]]:
    rows = json.loads(run_python(image, _DISTRIBUTIONS))
    return [
        (canonicalize_name(name), version, requires) for name, version, requires in rows
    ]


def unmet_requirements(image: Image) -> list[str]:
    """What ``pip check`` would report: each Requires-Dist not met at launch.

    Markers are evaluated for the interpreter running the tests, which is the one
    the build used (see ``support.fixtures.python_bin_dir``).
    """
    rows = _distribution_rows(image)
    installed = {name: version for name, version, _ in rows}
    problems = []
    for name, version, requires in rows:
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**default_environment(), "extra": ""}
            ):
                continue
            wanted = canonicalize_name(requirement.name)
            have = installed.get(wanted)
            if have is None:
                problems.append(f"{name} {version} requires {line}, not installed")
            elif not requirement.specifier.contains(have, prereleases=True):
                problems.append(f"{name} {version} requires {line}, have {have}")
    return problems


def cuda_names(names: Iterable[str]) -> list[str]:
    """The CUDA runtime distributions (nvidia-*, triton) among ``names``."""
    return sorted(
        n
        for n in (canonicalize_name(name) for name in names)
        if n.startswith("nvidia-") or n in ("triton", "pytorch-triton")
    )


def cuda_files(file_names: Iterable[str]) -> list[str]:
    """The wheel files of CUDA runtime distributions among downloaded files."""
    return [f for f in file_names if cuda_names([f.split("-", 1)[0]])]


def layers_holding(image: Image, project: str) -> list[str]:
    """Names of the image's layers that contain ``project``'s ``.dist-info``."""
    wanted = canonicalize_name(project)
    found = []
    for name, layer in sorted(image.layers.items()):
        for dist_info in layer.path.glob("lib/python*/site-packages/*.dist-info"):
            dist = dist_info.name[: -len(".dist-info")].rsplit("-", 1)[0]
            if canonicalize_name(dist) == wanted:
                found.append(name)
    return found


def layer_pins(image: Image, layer: str) -> list[str]:
    """The pins a dependency layer's metadata records."""
    return list(image.layers[layer].metadata["pins"])


def dependency_layers(image: Image) -> list[str]:
    """Layers that hold installed packages (every layer but the joining venv)."""
    return sorted(n for n in image.layers if n != "venv")


def log_lines(output: str, pattern: str) -> list[str]:
    """Lines of a build log, stripped, that match the regular expression ``pattern``."""
    lines = (line.strip() for line in output.splitlines())
    return [line for line in lines if re.search(pattern, line)]


def site_packages(image: Image, layer: str) -> Path:
    """The site-packages directory inside one of the image's layers."""
    (found,) = image.layers[layer].path.glob("lib/python*/site-packages")
    return found
