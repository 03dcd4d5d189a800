"""Building apps in integration tests: shared builds and the files of test apps.

:class:`Builds` runs builds on one emulated lifecycle, starting from a build cache that
already holds uv, and records what the stand-in indexes served during each build
(see the ``builds`` fixture in conftest.py). :func:`write_files` and
:func:`in_tree_project` make the files of test apps.

Test modules import from here rather than from conftest.py: tests/ holds several
conftest.py files, and which one ``import conftest`` finds depends on collection order.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from support.index import IndexServer, Request
from support.lifecycle import BuildResult, Cache, Image, Lifecycle

REPO_ROOT = Path(__file__).resolve().parents[2]
AppFactory = Callable[..., Path]


@dataclass
class Build:
    """One build and what the stand-in indexes served while it ran."""

    result: BuildResult
    pypi_downloads: list[str]
    cpu_downloads: list[str]
    pypi_requests: list[Request]
    cpu_requests: list[Request]

    @property
    def image(self) -> Image:
        return self.result.image

    @property
    def output(self) -> str:
        return self.result.output


class Builds:
    """Builds on one :class:`Lifecycle`, starting from a build cache that holds uv."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        uv_cache: Cache,
        pypi_index: IndexServer,
        cpu_index: IndexServer,
    ) -> None:
        self.lifecycle = lifecycle
        self.uv_cache = uv_cache
        self.pypi_index = pypi_index
        self.cpu_index = cpu_index

    def run(
        self,
        app_dir: Path,
        env: Mapping[str, str | None] | None = None,
        previous: BuildResult | Build | None = None,
        *,
        cache: Cache | None | str = "uv",
    ) -> Build:
        """Build ``app_dir``; ``cache="uv"`` (the default) starts from the uv cache
        unless ``previous`` brings its own; ``cache=None`` builds with no cache."""
        if isinstance(previous, Build):
            previous = previous.result
        if cache == "uv":
            cache = None if previous is not None else self.uv_cache
        self.pypi_index.clear_log()
        self.cpu_index.clear_log()
        result = self.lifecycle.run_build(app_dir, env, previous, cache=cache)
        return Build(
            result,
            self.pypi_index.downloads(),
            self.cpu_index.downloads(),
            self.pypi_index.requests,
            self.cpu_index.requests,
        )


def write_files(directory: Path, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> dedented text or bytes) into ``directory``."""
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))


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
