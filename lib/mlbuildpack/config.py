"""Configuration from environment variables, all named ``BP_ML_*``.

The README's configuration table lists the same variables; keep the two in step.
Variables reach the buildpack from ``pack build --env``, ``project.toml`` or the
platform's ``/platform/env`` directory, which :func:`load_platform_env` reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple

from .errors import BuildpackError

DEFAULT_TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"
DEFAULT_HEAVY_THRESHOLD_MB = 50
TORCH_VARIANTS = ("cpu", "cuda", "as-declared")


def load_platform_env(platform_dir: Optional[Path]) -> dict:
    """Return the environment with ``<platform>/env/*`` files applied on top.

    The lifecycle already applies these for buildpacks that do not set
    ``clear-env``; reading them again is harmless and makes the buildpack behave the
    same when a test or another platform only provides the directory.
    """
    env = dict(os.environ)
    if platform_dir is None:
        return env
    env_dir = platform_dir / "env"
    if env_dir.is_dir():
        for entry in sorted(env_dir.iterdir()):
            if entry.is_file():
                env[entry.name] = entry.read_text()
    return env


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise BuildpackError(
        f"Invalid value for {name}",
        f"{name}={raw!r} is neither true nor false.",
        f"Set {name} to true or false.",
    )


def _names(raw: Optional[str]) -> Tuple[str, ...]:
    if not raw:
        return ()
    return tuple(part.strip() for part in raw.replace(",", " ").split() if part.strip())


@dataclass(frozen=True)
class Config:
    """Every setting the buildpack reads, with its default."""

    force_detect: bool = False
    torch_index_url: str = DEFAULT_TORCH_INDEX_URL
    torch_index_url_set: bool = False
    torch_variant: str = "cpu"
    heavy_packages: Tuple[str, ...] = ()
    heavy_threshold_mb: int = DEFAULT_HEAVY_THRESHOLD_MB
    compile_bytecode: bool = True
    start_command: Optional[str] = None
    requirements_file: Optional[str] = None
    debug: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read the ``BP_ML_*`` variables from ``env``; raise on an invalid value."""
        variant = env.get("BP_ML_TORCH_VARIANT", "cpu").strip().lower() or "cpu"
        if variant not in TORCH_VARIANTS:
            raise BuildpackError(
                "Invalid value for BP_ML_TORCH_VARIANT",
                f"BP_ML_TORCH_VARIANT={variant!r} is not one of "
                f"{', '.join(TORCH_VARIANTS)}.",
                "Use cpu (the default), cuda to keep CUDA builds, or as-declared to "
                "install exactly what the requirements say.",
            )
        threshold_raw = env.get("BP_ML_HEAVY_THRESHOLD_MB", "").strip()
        threshold: Optional[int]
        try:
            threshold = (
                int(threshold_raw) if threshold_raw else DEFAULT_HEAVY_THRESHOLD_MB
            )
        except ValueError:
            threshold = None
        if threshold is None or threshold < 0:
            raise BuildpackError(
                "Invalid value for BP_ML_HEAVY_THRESHOLD_MB",
                f"BP_ML_HEAVY_THRESHOLD_MB={threshold_raw!r} is not a whole number "
                "of megabytes, 0 or more.",
                "Give the size in megabytes above which a package gets a layer of its "
                "own, e.g. 50; 0 turns the size rule off.",
            )
        return cls(
            force_detect=_flag(env, "BP_ML_FORCE_DETECT", False),
            torch_index_url=(
                env.get("BP_ML_TORCH_INDEX_URL") or DEFAULT_TORCH_INDEX_URL
            ).strip(),
            torch_index_url_set=bool((env.get("BP_ML_TORCH_INDEX_URL") or "").strip()),
            torch_variant=variant,
            heavy_packages=_names(env.get("BP_ML_HEAVY_PACKAGES")),
            heavy_threshold_mb=threshold,
            compile_bytecode=_flag(env, "BP_ML_COMPILE_BYTECODE", True),
            start_command=(env.get("BP_ML_START_COMMAND") or "").strip() or None,
            requirements_file=(env.get("BP_ML_REQUIREMENTS_FILE") or "").strip()
            or None,
            debug=_flag(env, "BP_ML_DEBUG", False),
        )
