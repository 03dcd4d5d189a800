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


# A PEP 517 backend inside the project (backend-path), so that building it needs
# nothing from an index: it zips the package's __init__.py with a minimal dist-info.
_IN_TREE_BACKEND = """\
import base64
import hashlib
import os
import zipfile

NAME, VERSION = {name!r}, {version!r}
DIST_INFO = f"{{NAME}}-{{VERSION}}.dist-info"
METADATA = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
WHEEL = (
    "Wheel-Version: 1.0\\nGenerator: in-tree\\nRoot-Is-Purelib: true\\n"
    "Tag: py3-none-any\\n"
)


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "w") as handle:
        handle.write(METADATA)
    with open(os.path.join(target, "WHEEL"), "w") as handle:
        handle.write(WHEEL)
    return DIST_INFO


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"{{name}},sha256={{digest.decode()}},{{len(data)}}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    module = NAME.replace("-", "_")
    with open(os.path.join(module, "__init__.py"), "rb") as handle:
        files = {{f"{{module}}/__init__.py": handle.read()}}
    files[f"{{DIST_INFO}}/METADATA"] = METADATA.encode()
    files[f"{{DIST_INFO}}/WHEEL"] = WHEEL.encode()
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{{DIST_INFO}}/RECORD,,")
    files[f"{{DIST_INFO}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel_name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return wheel_name
"""

_IN_TREE_PYPROJECT = """\
[project]
name = {name!r}
version = {version!r}

[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def in_tree_project(name: str, version: str, code: str) -> dict[str, str]:
    """Files of a buildable project whose package ``__init__.py`` is ``code``.

    Its build backend lives in the project itself, so building it needs no index.
    """
    return {
        "pyproject.toml": _IN_TREE_PYPROJECT.format(name=name, version=version),
        "backend.py": _IN_TREE_BACKEND.format(name=name, version=version),
        f"{name.replace('-', '_')}/__init__.py": code,
    }
