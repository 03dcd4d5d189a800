"""uv, the resolver and installer the build drives, kept in a cached layer.

uv is pinned here and installed with pip from the app's package index settings
(so a private mirror of PyPI works too) into the ``uv`` layer: cached between builds,
never part of the image. Why uv rather than pip-tools or pip: see the README.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from .cnb import Layer, LayerTypes
from .errors import BuildpackError
from .indexes import DEFAULT_INDEX_VARIABLES, EXTRA_INDEX_VARIABLES
from .output import Log

UV_VERSION = "0.13.9"


class Uv:
    """Runs one uv binary with the environment every call needs."""

    def __init__(self, binary: Path, env: Mapping[str, str], cache_dir: Path) -> None:
        self.binary = binary
        self.cache_dir = cache_dir
        # The index variables are read into the indexes we pass as flags, where the
        # torch family is scoped to its own index; uv must not add them again.
        self.env: Dict[str, str] = {
            name: value
            for name, value in env.items()
            if name not in DEFAULT_INDEX_VARIABLES + EXTRA_INDEX_VARIABLES
        }
        self.env.update(
            {
                "UV_CACHE_DIR": str(cache_dir),
                "UV_PYTHON_DOWNLOADS": "never",
                "UV_NO_PROGRESS": "1",
                # The build image's own CA store, so that an HTTPS proxy its owner
                # trusts is trusted here too; SSL_CERT_FILE, when set, still wins.
                "UV_SYSTEM_CERTS": env.get("UV_SYSTEM_CERTS", "1"),
            }
        )
        # Our own temp files stay beside the layers, where we delete them.
        self.env["TMPDIR"] = str(cache_dir.parent)

    def run(
        self, args: Sequence[str], cwd: Path, log: Log
    ) -> subprocess.CompletedProcess:
        """Run ``uv <args>``; return the finished process (stdout and stderr text)."""
        log.debug("uv " + " ".join(args))
        return subprocess.run(
            [str(self.binary), *args],
            cwd=str(cwd),
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def clear_cache(self) -> None:
        """Delete everything uv downloaded or unpacked so far."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)


def _wanted(arch: str) -> Dict[str, str]:
    return {"uv_version": UV_VERSION, "arch": arch, "python": _python_tag()}


def keep_cached(layers_dir: Path, arch: str) -> None:
    """Restate the types of a restored uv layer that this build did not need.

    The lifecycle restores a cached layer's record without ``[types]``; left like
    that, the layer would be dropped from the cache and installed again next time.
    """
    layer = Layer(layers_dir, "uv")
    if (
        layer.stored_metadata() == _wanted(arch)
        and (layer.path / "bin" / "uv").is_file()
    ):
        layer.write_record(LayerTypes(cache=True), _wanted(arch))


def ensure_uv(layers_dir: Path, env: Mapping[str, str], arch: str, log: Log) -> Path:
    """Return the path of the uv binary, installing it into the ``uv`` layer if needed.

    Raises BuildpackError when pip cannot install it.
    """
    layer = Layer(layers_dir, "uv")
    wanted = _wanted(arch)
    binary = layer.path / "bin" / "uv"
    stored = layer.stored_metadata()
    types = LayerTypes(cache=True)
    if stored == wanted and binary.is_file():
        log.step(f"Using cached uv {UV_VERSION}")
        layer.write_record(types, wanted)
        return binary

    if stored is not None:
        log.step(f"Discarding cached uv since: {_describe_change(stored, wanted)}")
    layer.reset()
    with log.timed(f"Installing uv {UV_VERSION} with pip"):
        _pip_install_uv(layer.path, env, log)
    if not binary.is_file():
        raise BuildpackError(
            "Could not install uv",
            f"pip finished, but {binary} does not exist.",
            "Check that the package index serves a uv wheel for this platform.",
            user_error=False,
        )
    layer.write_record(types, wanted)
    return binary


def _python_tag() -> str:
    return f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"


def _describe_change(stored: Mapping[str, object], wanted: Mapping[str, object]) -> str:
    changes = [
        f"{key} changed from {stored.get(key)!r} to {value!r}"
        for key, value in wanted.items()
        if stored.get(key) != value
    ]
    return "; ".join(changes) or "its files are missing"


def _pip_install_uv(target: Path, env: Mapping[str, str], log: Log) -> None:
    """Install uv with pip into ``target``; pip's cache and any venv go away."""
    pip_env = dict(env)
    pip_env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    pip_env["PIP_NO_CACHE_DIR"] = "1"
    if env.get("SSL_CERT_FILE") and not env.get("PIP_CERT"):
        pip_env["PIP_CERT"] = env["SSL_CERT_FILE"]
    with tempfile.TemporaryDirectory(prefix="mlbp-pip-", dir=target.parent) as tmp:
        pip = _pip_command(Path(tmp), pip_env, log)
        _run_checked(
            [
                *pip,
                "install",
                "--quiet",
                "--no-compile",
                "--target",
                str(target),
                f"uv=={UV_VERSION}",
            ],
            pip_env,
            log,
            f"Could not install uv {UV_VERSION} with pip",
        )


def _pip_command(tmp: Path, env: Mapping[str, str], log: Log) -> List[str]:
    """How to run pip for the build's Python, the quickest way first.

    The interpreter's own pip; else the pip wheel that ensurepip installs from, run
    straight from the wheel as ensurepip does (Debian's python3-venv ships one);
    else pip in a venv made under ``tmp``, which takes seconds longer. ``--target``
    installs are exempt from PEP 668, so a system pip may be used.
    """
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    wheel = _bundled_pip_wheel()
    if wheel is not None:
        return [sys.executable, str(wheel / "pip")]
    venv = tmp / "venv"
    _run_checked(
        [sys.executable, "-m", "venv", str(venv)],
        env,
        log,
        "Could not create a venv to run pip in",
    )
    return [str(venv / "bin" / "python"), "-m", "pip"]


def _bundled_pip_wheel() -> Optional[Path]:
    """The pip wheel ``python -m venv`` would install pip from, if there is one."""
    places = [sysconfig.get_config_var("WHEEL_PKG_DIR")]
    ensurepip = importlib.util.find_spec("ensurepip")
    if ensurepip is not None and ensurepip.origin:
        places.append(str(Path(ensurepip.origin).parent / "_bundled"))
    for place in places:
        if place and Path(place).is_dir():
            wheels = sorted(Path(place).glob("pip-*-py3-none-any.whl"))
            if wheels:
                return wheels[-1]
    return None


def _run_checked(args: List[str], env: Mapping[str, str], log: Log, title: str) -> None:
    log.detail(
        "Running "
        + " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(args))
    )
    done = subprocess.run(
        args,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BuildpackError(
            title,
            f"The command exited with status {done.returncode}:\n"
            + done.stdout.strip(),
            "Check that PyPI, or the index in PIP_INDEX_URL, can be reached from "
            "the build (proxy and CA certificate: pass SSL_CERT_FILE with pack "
            "build --env).",
            # Nearly always the index or the network the build was given.
            user_error=True,
        )
