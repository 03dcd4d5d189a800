"""Real, installable wheels made on the fly for tests.

A :class:`WheelSpec` describes a tiny distribution: an importable module that knows
its own version, optional console scripts, ``Requires-Dist`` lines (markers welcome),
an optional ``.pth`` file, an optional namespace package, and an optional payload of
N megabytes so that size rules have something to weigh.

The wheel is made by writing the unpacked tree (module files plus ``.dist-info``) and
running ``python -m wheel pack`` on it, which writes RECORD and names the file. That
costs about 0.15 s a wheel, far less than a ``python -m build`` round trip through an
isolated build environment, and it needs no network. ``SOURCE_DATE_EPOCH`` pins the
zip timestamps, so the same spec gives the same bytes (and sha256) on every machine.

Built wheels are kept twice: in memory for the session, and on disk under
``<cache>/wheels/<spec hash>/`` so that later sessions start at once. The cache
directory is ``$MLBP_TEST_CACHE`` or ``~/.cache/mlbp-tests``.

:func:`pypi_wheels` and :func:`cpu_index_wheels` are the two ready-made scenario sets
that stand in for PyPI and for the PyTorch CPU index; :func:`real_uv_wheel` fetches the
real uv wheel that the buildpack bootstraps with pip.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

# Bump when the layout of generated wheels changes, so on-disk caches are not reused.
FACTORY_VERSION = "1"

# 1980-01-02: zip cannot store dates before 1980.
_SOURCE_DATE_EPOCH = "315619200"

UV_VERSION = "0.13.9"


@dataclass(frozen=True)
class WheelSpec:
    """What one generated wheel contains.

    ``module`` defaults to the project name with ``-`` and ``.`` turned into ``_``.
    With ``namespace`` set the module lives at ``<namespace>/<module>/`` and the
    namespace directory has no ``__init__.py`` (a PEP 420 namespace package).
    Each name in ``scripts`` becomes a console script that runs ``<module>:main``,
    which prints ``"<name> <version> <args>"``. ``pth`` is the text of a
    ``<module>.pth`` file installed at the top of site-packages. ``extra_code`` is
    appended to the module's ``__init__.py``.
    """

    name: str
    version: str
    requires: tuple[str, ...] = ()
    module: str | None = None
    namespace: str | None = None
    scripts: tuple[str, ...] = ()
    pth: str | None = None
    payload_mb: float = 0.0
    extra_code: str = ""
    summary: str = "A generated test package."

    @property
    def module_name(self) -> str:
        """The module's own name, without the namespace."""
        return self.module or re.sub(r"[-.]+", "_", self.name).lower()

    @property
    def import_name(self) -> str:
        """The dotted name to ``import``."""
        if self.namespace:
            return f"{self.namespace}.{self.module_name}"
        return self.module_name

    @property
    def filename(self) -> str:
        """The wheel's file name, as ``wheel pack`` will choose it."""
        return f"{_escaped(self.name)}-{self.version}-py3-none-any.whl"

    @property
    def payload_bytes(self) -> int:
        return int(self.payload_mb * 1024 * 1024)

    def key(self) -> str:
        """A hash of everything that goes into the wheel; names its cache entry."""
        fields = asdict(self) | {"factory": FACTORY_VERSION}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _escaped(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def default_cache_dir() -> Path:
    """Return the per-machine cache directory for wheels and downloads."""
    configured = os.environ.get("MLBP_TEST_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "mlbp-tests"


class WheelFactory:
    """Builds wheels from specs, reusing earlier builds from memory and disk."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()
        self._built: dict[str, Path] = {}

    def build(self, spec: WheelSpec) -> Path:
        """Return the path of the wheel for ``spec``, building it if needed.

        The returned file lives in the cache; copy it before changing it.
        """
        key = spec.key()
        if key in self._built:
            return self._built[key]
        entry = self.cache_dir / "wheels" / key[:24]
        wheel = entry / spec.filename
        if not wheel.is_file():
            entry.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=entry) as scratch:
                built = _pack(spec, Path(scratch))
                # rename is atomic, so a concurrent session sees all or nothing.
                os.replace(built, wheel)
        self._built[key] = wheel
        return wheel

    def build_all(self, specs: Iterable[WheelSpec]) -> list[Path]:
        """Build many specs, a few at a time; return paths in the same order."""
        specs = list(specs)
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(self.build, specs))

    def populate(self, directory: Path, specs: Iterable[WheelSpec]) -> list[Path]:
        """Copy the wheels for ``specs`` into ``directory``; return the copies."""
        directory.mkdir(parents=True, exist_ok=True)
        copies = []
        for wheel in self.build_all(specs):
            target = directory / wheel.name
            shutil.copyfile(wheel, target)
            copies.append(target)
        return copies


def _pack(spec: WheelSpec, scratch: Path) -> Path:
    tree = scratch / "tree"
    _write_tree(spec, tree)
    out = scratch / "out"
    out.mkdir()
    env = dict(os.environ, SOURCE_DATE_EPOCH=_SOURCE_DATE_EPOCH)
    subprocess.run(
        [sys.executable, "-m", "wheel", "pack", str(tree), "--dest-dir", str(out)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    (wheel,) = out.iterdir()
    if wheel.name != spec.filename:
        raise RuntimeError(f"wheel pack wrote {wheel.name}, expected {spec.filename}")
    return wheel


def _write_tree(spec: WheelSpec, tree: Path) -> None:
    package_dir = tree / Path(*spec.import_name.split("."))
    package_dir.mkdir(parents=True)
    code = textwrap.dedent(
        f'''\
        """{spec.summary}"""
        import sys

        __version__ = {spec.version!r}
        DISTRIBUTION = {spec.name!r}


        def main():
            print(" ".join([DISTRIBUTION, __version__, *sys.argv[1:]]))
            return 0
        '''
    )
    if spec.extra_code:
        code += "\n" + textwrap.dedent(spec.extra_code)
    (package_dir / "__init__.py").write_text(code)
    if spec.payload_bytes:
        # Random bytes do not compress, so the wheel really is this much bigger.
        payload = random.Random(f"{spec.name}=={spec.version}").randbytes(
            spec.payload_bytes
        )
        (package_dir / "_payload.bin").write_bytes(payload)
    if spec.pth is not None:
        (tree / f"{spec.module_name}.pth").write_text(spec.pth)

    dist_info = tree / f"{_escaped(spec.name)}-{spec.version}.dist-info"
    dist_info.mkdir()
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {spec.name}",
        f"Version: {spec.version}",
        f"Summary: {spec.summary}",
        *(f"Requires-Dist: {requirement}" for requirement in spec.requires),
    ]
    (dist_info / "METADATA").write_text("\n".join(metadata) + "\n")
    (dist_info / "WHEEL").write_text(
        "Wheel-Version: 1.0\n"
        "Generator: mlbp-tests\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    if spec.scripts:
        lines = ["[console_scripts]"]
        lines += [f"{script} = {spec.import_name}:main" for script in spec.scripts]
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")


# --- The real uv wheel -----------------------------------------------------------


def real_uv_wheel(cache_dir: Path | None = None, version: str = UV_VERSION) -> Path:
    """Return the real uv wheel for this machine's architecture.

    It is downloaded from the index pip is configured with (PyPI) once per machine
    and kept under ``<cache>/uv/<version>/``. A lock file keeps two sessions that
    start together from downloading it twice.
    """
    cache_dir = cache_dir or default_cache_dir()
    target_dir = cache_dir / "uv" / version
    target_dir.mkdir(parents=True, exist_ok=True)
    with _locked(target_dir / ".lock"):
        found = sorted(target_dir.glob(f"uv-{version}-*.whl"))
        if found:
            return found[0]
        with tempfile.TemporaryDirectory(dir=target_dir) as scratch:
            subprocess.run(
                [
                    sys.executable, "-m", "pip", "download",
                    "--quiet", "--no-deps", "--only-binary=:all:",
                    "--platform", f"manylinux_2_17_{platform.machine()}",
                    "--dest", scratch,
                    f"uv=={version}",
                ],
                check=True,
            )  # fmt: skip
            (downloaded,) = Path(scratch).glob("uv-*.whl")
            target = target_dir / downloaded.name
            os.replace(downloaded, target)
            return target


class _locked:
    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> None:
        self._file = open(self._path, "w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


# --- Scenario sets ---------------------------------------------------------------

_LINUX = 'platform_system == "Linux"'

# Heavy CUDA dependencies of the PyPI torch: their absence after a CPU build is the
# point, so they are big enough to notice.
NVIDIA_CUBLAS = WheelSpec("nvidia-cublas-cu12", "12.4.5.8", payload_mb=3)
NVIDIA_CUDNN = WheelSpec("nvidia-cudnn-cu12", "9.1.0.70", payload_mb=3)
TRITON = WheelSpec("triton", "3.3.0", payload_mb=2)

FILELOCK = WheelSpec("filelock", "3.16.1")
TYPING_EXTENSIONS = WheelSpec("typing-extensions", "4.12.2")

# What the PyTorch CPU index carries besides torch. Real CPU indexes mirror a few
# common dependencies; these copies have a higher version and say where they came
# from, so a test can tell if the buildpack took them from the torch index.
CPU_INDEX_FILELOCK = WheelSpec(
    "filelock", "3.99.0", extra_code='ORIGIN = "cpu-index"\n'
)
CPU_INDEX_TYPING_EXTENSIONS = WheelSpec(
    "typing-extensions", "4.99.0", extra_code='ORIGIN = "cpu-index"\n'
)


def _torch_from_pypi(version: str) -> WheelSpec:
    return WheelSpec(
        "torch",
        version,
        requires=(
            "filelock",
            "typing-extensions>=4.10.0",
            f"nvidia-cublas-cu12=={NVIDIA_CUBLAS.version}; {_LINUX}",
            f"nvidia-cudnn-cu12=={NVIDIA_CUDNN.version}; {_LINUX}",
            f"triton=={TRITON.version}; {_LINUX}",
        ),
        payload_mb=1,
        extra_code='class version:\n    cuda = "12.4"\n',
    )


def _torch_from_cpu_index(version: str) -> WheelSpec:
    return WheelSpec(
        "torch",
        f"{version}+cpu",
        requires=("filelock", "typing-extensions>=4.10.0"),
        payload_mb=1,
        extra_code="class version:\n    cuda = None\n",
    )


def pypi_wheels() -> list[WheelSpec]:
    """The generated part of the PyPI stand-in (the real uv wheel is added apart).

    Versions: torch 2.12.0 and 2.13.0 (with CUDA dependencies on Linux),
    torchvision 0.27.0/0.28.0 pinned to them, numpy 2.3.0 and 2.3.1, and one version
    of everything else. ``smalldep`` is a one-module dependency to add to an app;
    ``nspkg-a``/``nspkg-b`` share the ``nsroot`` namespace; ``pthpkg`` installs a
    ``pthpkg.pth`` that sets ``PTHPKG_ACTIVE=1`` in ``os.environ`` at start-up.
    """
    return [
        _torch_from_pypi("2.12.0"),
        _torch_from_pypi("2.13.0"),
        NVIDIA_CUBLAS,
        NVIDIA_CUDNN,
        TRITON,
        WheelSpec("torchvision", "0.27.0", requires=("torch==2.12.0",)),
        WheelSpec("torchvision", "0.28.0", requires=("torch==2.13.0",)),
        WheelSpec(
            "sentence-transformers",
            "5.0.0",
            requires=("torch>=2.0", "scikit-learn", "scipy", "numpy"),
        ),
        WheelSpec(
            "scikit-learn",
            "1.8.0",
            module="sklearn",
            requires=("scipy", "numpy"),
            payload_mb=1,
        ),
        WheelSpec("scipy", "1.16.0", requires=("numpy",), payload_mb=1),
        WheelSpec("numpy", "2.3.0", payload_mb=1),
        WheelSpec("numpy", "2.3.1", payload_mb=1),
        WheelSpec("flask", "3.0.3", scripts=("flask",)),
        WheelSpec("gunicorn", "22.0.0", scripts=("gunicorn",)),
        WheelSpec(
            "fastapi", "0.115.0", requires=("typing-extensions",), scripts=("fastapi",)
        ),
        WheelSpec("uvicorn", "0.30.0", scripts=("uvicorn",)),
        FILELOCK,
        TYPING_EXTENSIONS,
        WheelSpec("smalldep", "1.17.0"),
        WheelSpec("nspkg-a", "1.0.0", namespace="nsroot", module="a"),
        WheelSpec("nspkg-b", "1.0.0", namespace="nsroot", module="b"),
        WheelSpec(
            "pthpkg",
            "1.0.0",
            pth='import os; os.environ["PTHPKG_ACTIVE"] = "1"\n',
        ),
    ]


def cpu_index_wheels() -> list[WheelSpec]:
    """The PyTorch CPU index stand-in: ``+cpu`` torch without CUDA dependencies."""
    return [
        _torch_from_cpu_index("2.12.0"),
        _torch_from_cpu_index("2.13.0"),
        WheelSpec("torchvision", "0.27.0+cpu", requires=("torch==2.12.0",)),
        WheelSpec("torchvision", "0.28.0+cpu", requires=("torch==2.13.0",)),
        CPU_INDEX_FILELOCK,
        CPU_INDEX_TYPING_EXTENSIONS,
    ]
