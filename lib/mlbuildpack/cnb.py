"""What the Buildpack API (0.12) hands to ``bin/build`` and what it reads back.

Only this module knows file names and TOML layouts of the CNB contract: the
layer content metadata ``<layers>/<name>.toml``, env files under a layer, and
``launch.toml``. The rules it follows are in the spec's "Layer Types" section and in
../shared/notes/cnb-mechanics.md §1.4-§1.9.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import tomli_w

from .tomlcompat import tomllib


@dataclass(frozen=True)
class Target:
    """The run image's target as the lifecycle describes it (``CNB_TARGET_*``)."""

    os: str
    arch: str
    distro_name: str
    distro_version: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Target:
        return cls(
            os=env.get("CNB_TARGET_OS", "linux"),
            arch=env.get("CNB_TARGET_ARCH", ""),
            distro_name=env.get("CNB_TARGET_DISTRO_NAME", ""),
            distro_version=env.get("CNB_TARGET_DISTRO_VERSION", ""),
        )

    def describe(self) -> str:
        distro = f" {self.distro_name} {self.distro_version}".rstrip()
        return f"{self.os}/{self.arch or 'unknown'}{distro}"


@dataclass(frozen=True)
class BuildContext:
    """Directories and settings of one ``bin/build`` run."""

    app_dir: Path
    layers_dir: Path
    platform_dir: Path
    plan_path: Path
    buildpack_dir: Path
    target: Target

    @classmethod
    def from_process(cls, argv: Sequence[str], env: Mapping[str, str]) -> BuildContext:
        """Read the spec's env vars, falling back to the positional arguments."""

        def pick(name: str, position: int) -> Path:
            value = env.get(name) or (argv[position] if len(argv) > position else "")
            if not value:
                raise SystemExit(
                    f"bin/build: {name} is not set; run me from a CNB lifecycle"
                )
            return Path(value)

        buildpack_dir = Path(
            env.get("CNB_BUILDPACK_DIR") or Path(__file__).resolve().parents[2]
        )
        return cls(
            app_dir=Path.cwd(),
            layers_dir=pick("CNB_LAYERS_DIR", 0),
            platform_dir=pick("CNB_PLATFORM_DIR", 1),
            plan_path=pick("CNB_BP_PLAN_PATH", 2),
            buildpack_dir=buildpack_dir,
            target=Target.from_env(env),
        )


@dataclass
class LayerTypes:
    launch: bool = False
    build: bool = False
    cache: bool = False


class Layer:
    """One layer directory and its ``<name>.toml``."""

    def __init__(self, layers_dir: Path, name: str) -> None:
        self.name = name
        self.path = layers_dir / name
        self.toml_path = layers_dir / f"{name}.toml"

    def stored_metadata(self) -> Optional[Dict[str, Any]]:
        """Return the ``[metadata]`` table the lifecycle restored, or None.

        For a launch-only layer the lifecycle restores only this table (from the
        previous image) and no files; for a cached layer it restores both or neither.
        An unreadable file counts as no record: the layer is then rebuilt.
        """
        if not self.toml_path.is_file():
            return None
        try:
            data = tomllib.loads(self.toml_path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        metadata = data.get("metadata")
        return metadata if isinstance(metadata, dict) else None

    def has_files(self) -> bool:
        return self.path.is_dir()

    def reset(self) -> None:
        """Remove the directory and the record, so nothing half-made survives."""
        if self.path.is_dir():
            shutil.rmtree(self.path)
        if self.toml_path.exists():
            self.toml_path.unlink()

    def write_record(self, types: LayerTypes, metadata: Mapping[str, Any]) -> None:
        """Write ``<name>.toml``. Done last, only once the layer is complete.

        The lifecycle writes ``[types]`` back to nothing, so this must be stated again
        in every build, including builds that reuse the layer untouched.
        """
        document = {
            "types": {
                "launch": types.launch,
                "build": types.build,
                "cache": types.cache,
            },
            "metadata": dict(metadata),
        }
        tmp = self.toml_path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(document))
        os.replace(tmp, self.toml_path)

    def write_env(self, scope: str, name: str, value: str, action: str = "") -> None:
        """Write an env file: ``scope`` is ``env``, ``env.launch`` or ``env.build``.

        ``action`` is the suffix (``default``, ``override``, ``prepend``,
        ``append``); prepend and append get a ``:`` delimiter file, since without
        one the lifecycle joins values with no separator.
        """
        env_dir = self.path / scope
        env_dir.mkdir(parents=True, exist_ok=True)
        file_name = f"{name}.{action}" if action else name
        (env_dir / file_name).write_text(value)
        if action in ("prepend", "append"):
            (env_dir / f"{name}.delim").write_text(":")


def write_launch_toml(layers_dir: Path, processes: List[Dict[str, Any]]) -> None:
    """Write ``<layers>/launch.toml`` with the given ``[[processes]]``."""
    document: Dict[str, Any] = {"processes": processes}
    (layers_dir / "launch.toml").write_text(tomli_w.dumps(document))
