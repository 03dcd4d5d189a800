"""Installing one dependency layer, and the small ``venv`` layer that joins them.

Each dependency layer is a ``--prefix`` install of exact pins with ``--no-deps``:
the resolution already decided every version, so no layer can replace what another
holds (field case F04). The ``venv`` layer is a venv without pip whose
``site-packages`` holds one ``.pth`` file that adds each layer's site-packages with
``site.addsitedir``, so ``.pth`` files and namespace packages inside the layers work
and ``importlib.metadata`` sees every distribution.

Nothing of an install stays behind: uv's cache and our temp files live in one
directory beside the layers and are deleted after each layer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from .cnb import Layer
from .errors import BuildpackError
from .indexes import AppIndexes
from .layers import LayerPlan
from .output import Log
from .python_env import PythonInfo
from .uvtool import Uv

VENV_LAYER = "venv"
LAYERS_PTH = "ml-buildpack-layers.pth"


def site_packages(prefix: Path, python: PythonInfo) -> Path:
    """The site-packages directory of a ``--prefix`` install under ``prefix``."""
    return prefix / "lib" / f"python{python.minor}" / "site-packages"


def install_layer(
    layer: Layer,
    plan: LayerPlan,
    uv: Uv,
    venv_python: Path,
    python: PythonInfo,
    indexes: AppIndexes,
    torch_index: Optional[str],
    compile_bytecode: bool,
    workdir: Path,
    log: Log,
    pin_hashes: Optional[Mapping[str, Sequence[str]]] = None,
    pin_indexes: Optional[Mapping[str, str]] = None,
) -> None:
    """Install ``plan``'s pins into ``layer``; on failure remove the half-made layer.

    ``pin_indexes`` names the index a package is tied to by the app (a uv or Poetry
    source); such packages are installed from that index alone, never from another
    index that happens to have the same name. Raises BuildpackError with uv's
    message when an install fails.
    """
    layer.reset()
    layer.path.mkdir(parents=True)
    default_args = (
        ["--default-index", torch_index, *indexes.host_args()]
        if plan.from_torch_index and torch_index
        else indexes.uv_args()
    )
    groups: Dict[str, List[str]] = {}
    for pin in plan.pins:
        # Declared hashes are checked by uv: a file that does not match is refused.
        hashes = "".join(
            f" --hash={value}" for value in (pin_hashes or {}).get(pin.name, ())
        )
        index = (pin_indexes or {}).get(pin.name, "")
        groups.setdefault(index, []).append(f"{pin.requirement}{hashes}\n")
    try:
        for number, (index, lines) in enumerate(sorted(groups.items())):
            pins_file = workdir / f"{plan.name}-{number}.txt"
            pins_file.write_text("".join(lines))
            args = [
                "pip",
                "install",
                "--no-deps",
                "--no-config",
                "--prefix",
                str(layer.path),
                "--python",
                str(venv_python),
                "--requirement",
                str(pins_file),
                "--quiet",
            ]
            args += (
                ["--default-index", index, *indexes.host_args()]
                if index
                else default_args
            )
            done = uv.run(args, cwd=workdir, log=log)
            if done.returncode != 0:
                names = ", ".join(pin.describe() for pin in plan.pins[:6])
                raise BuildpackError(
                    f"Could not install layer {plan.name}",
                    f"uv could not install {names}:\n\n{done.stderr.strip()}",
                    "If a pin has no wheel for this platform or index, change the pin; "
                    "if the index could not be reached, check the network and its "
                    "certificate (pass SSL_CERT_FILE with pack build --env).",
                )
        if compile_bytecode:
            _compile_bytecode(venv_python, site_packages(layer.path, python), log)
    except BaseException:
        layer.reset()
        raise
    finally:
        uv.clear_cache()


def _compile_bytecode(venv_python: Path, directory: Path, log: Log) -> None:
    """Write unchecked-hash ``.pyc`` files: valid whatever the files' mtimes become.

    The exporter resets every mtime in a layer, which would make timestamp-based
    ``.pyc`` files stale at first import; hash-based ones stay valid, and the
    unchecked kind skips re-reading the source, since layers never change in place.
    """
    if not directory.is_dir():
        return
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532801")
    done = subprocess.run(
        [
            str(venv_python),
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(directory),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        # Some packages ship deliberately invalid .py files (templates, py2 tests);
        # those fail to compile and are loaded from source if ever imported.
        log.debug("compileall reported errors:\n" + done.stdout[-2000:])


def directory_size(path: Path) -> int:
    """Bytes in regular files below ``path``, each hard-linked file counted once."""
    seen = set()
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
    return total


def create_venv(layer: Layer, python: PythonInfo, layer_paths: Sequence[Path]) -> Path:
    """Make the ``venv`` layer: a pip-less venv whose .pth adds every layer.

    Returns the venv's python. The venv's ``bin/python`` links to the build's
    interpreter, which is the run image's too (or a runtime buildpack's launch layer).
    """
    layer.reset()
    done = subprocess.run(
        [python.executable, "-m", "venv", "--without-pip", str(layer.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        layer.reset()
        raise BuildpackError(
            "Could not create the app's virtual environment",
            f"{python.executable} -m venv failed:\n{done.stdout.strip()}",
            "Use a build image whose python3 includes the venv module "
            "(Debian: python3-venv).",
            user_error=False,
        )
    write_layers_pth(layer, python, layer_paths)
    return layer.path / "bin" / "python"


def write_layers_pth(
    layer: Layer, python: PythonInfo, layer_paths: Sequence[Path]
) -> None:
    lines = [
        f"import site; site.addsitedir({str(site_packages(p, python))!r})\n"
        for p in layer_paths
    ]
    target = site_packages(layer.path, python)
    target.mkdir(parents=True, exist_ok=True)
    (target / LAYERS_PTH).write_text("".join(lines))


def venv_environment(layer: Layer) -> None:
    """Launch-time variables of the venv layer.

    Its ``bin/`` needs no variable: the lifecycle puts a launch layer's bin on PATH.
    """
    layer.write_env("env.launch", "VIRTUAL_ENV", str(layer.path), "override")
    layer.write_env("env.launch", "PYTHONUNBUFFERED", "1", "default")
    layer.write_env("env.launch", "PYTHONDONTWRITEBYTECODE", "1", "default")
    layer.write_env("env.launch", "PORT", "8080", "default")
