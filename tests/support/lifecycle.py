"""Run our buildpack the way the CNB lifecycle would, without pack or docker.

What is emulated is lifecycle v0.21 on Platform API 0.15 driving one Buildpack API
0.12 buildpack (``/work/shared/notes/cnb-mechanics.md`` §1 has the rules and where in
the lifecycle's source each was read):

- detect (§1.1): filtered environment plus ``<platform>/env``, ``CNB_*`` variables and
  positional arguments, exit codes 0/100/other, and plan resolution for a group of one
  (optionally after buildpacks that provide some names, see ``earlier_provides``);
- restore (§1.9): launch-only layers come back as a ``<layer>.toml`` holding only
  ``[metadata]`` and no directory; ``build=true`` launch layers get nothing; cache
  layers get metadata and contents when the recorded digests agree, else neither;
  ``store.toml`` always comes back; ``clear_cache`` skips all but ``store.toml``;
- build (§1.2): ``bin/build`` with its environment, arguments and Buildpack Plan, in
  a fresh copy of the app and with a fresh, empty ``HOME`` (a build container keeps
  nothing between builds);
- the checks the lifecycle makes after ``bin/build`` and at export (§1.4, §1.6,
  §1.9): flags outside ``[types]``, all-false layers set aside, ``[[unmet]]`` names,
  process rules, "cache=true but has no contents", "cannot reuse ... previous image
  has no metadata", reuse of a launch layer left without a directory;
- launch (§1.5, §1.8): the environment the launcher builds from the layers
  (``bin``/``lib`` directories, ``env/`` and ``env.launch/`` files with their
  override/default/prepend/append/delim rules, exec.d output) and the processes in
  ``launch.toml``.

Not emulated: SBOM files (``<layer>.sbom.*``) are neither restored nor checked;
``exec-env`` on layers and processes is ignored; slices are not split out of the app
layer; only one buildpack runs, so ``env.build/`` and other buildpacks' build layers
never apply; ``/tmp`` and the rest of the file system are shared with the host.

Paths. In a real build the layers are always at ``/layers``, the app at
``/workspace`` and the platform at ``/platform``. Installers write absolute layer
paths into ``.pth`` files, script shebangs and venv configuration, so every build of
one :class:`Lifecycle` uses the same three paths under its ``root``:
``<root>/layers``, ``<root>/workspace`` and ``<root>/platform``. They are emptied
before each build. What the exporter keeps is moved to ``<root>/images/<n>/`` and
``<root>/caches/<n>/`` (never changed afterwards), and :meth:`Image.materialize` puts
an image's layers and app back at ``<root>/layers`` and ``<root>/workspace`` as hard
links, so the paths baked in at build time are right at launch. A program run at
launch must therefore not modify layer files in place (new files, such as
``__pycache__``, are fine).

Digests are the sha256 of a normalised tar of the layer directory (sorted entries,
zero mtime, uid and gid, no owner names, hard links stored as plain files), the same
normalisation the lifecycle applies, so equal contents give equal digests. They are
not byte-compatible with the lifecycle's own digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import tomllib

PLATFORM_API = "0.15"
EXEC_ENV = "production"

# Variables of the outer environment that reach buildpacks (lifecycle env/build.go).
ROOT_DIR_VARIABLES = (
    "PATH",
    "LD_LIBRARY_PATH",
    "LIBRARY_PATH",
    "CPATH",
    "PKG_CONFIG_PATH",
)
PASSED_THROUGH = ROOT_DIR_VARIABLES + (
    "HOME",
    "HOSTNAME",
    "CNB_STACK_ID",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
)

# Files in a buildpack's layers directory that are not layers.
NOT_LAYERS = ("launch.toml", "build.toml", "store.toml")

_PROCESS_TYPE = re.compile(r"^[A-Za-z0-9._-]+$")


class BuildFailed(AssertionError):
    """Raised when a test asks for the image of a build that did not succeed."""


# --- Results ---------------------------------------------------------------------


@dataclass(frozen=True)
class LayerTypes:
    launch: bool = False
    build: bool = False
    cache: bool = False

    @classmethod
    def from_toml(cls, data: Mapping[str, Any]) -> LayerTypes:
        types = data.get("types", {})
        return cls(
            launch=bool(types.get("launch", False)),
            build=bool(types.get("build", False)),
            cache=bool(types.get("cache", False)),
        )


@dataclass(frozen=True)
class Layer:
    """One layer of an exported image.

    ``status`` is ``"new"`` for contents the exporter had not seen in the previous
    image, ``"unchanged"`` for a rebuilt directory whose digest equals the previous
    one, and ``"reused"`` for a layer the buildpack left without a directory, which
    the exporter took from the previous image. The lifecycle logs "Reusing layer"
    for the last two.
    """

    name: str
    types: LayerTypes
    metadata: dict
    digest: str
    path: Path
    status: str


@dataclass(frozen=True)
class CachedLayer:
    name: str
    types: LayerTypes
    metadata: dict
    digest: str
    path: Path


@dataclass(frozen=True)
class Cache:
    """The build cache a build left: its ``cache=true`` layers."""

    layers: dict[str, CachedLayer]


@dataclass
class DetectResult:
    """What ``bin/detect`` did and the plan the lifecycle resolved from it.

    ``plan`` is the TOML the buildpack wrote; ``entries`` the Buildpack Plan that
    ``bin/build`` would get; ``error`` says why resolution or the target check
    failed when ``bin/detect`` itself passed.
    """

    exit_code: int
    output: str
    plan: dict
    entries: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.error is None


@dataclass
class Image:
    """The app image as the exporter would have written it."""

    lifecycle: Lifecycle
    number: int
    layers: dict[str, Layer]
    launch: dict
    store: dict | None
    app_dir: Path

    @property
    def reused(self) -> list[str]:
        """Layers taken from the previous image because no directory was written."""
        return sorted(n for n, layer in self.layers.items() if layer.status == "reused")

    @property
    def new(self) -> list[str]:
        """Layers whose contents differ from the previous image."""
        return sorted(n for n, layer in self.layers.items() if layer.status == "new")

    def digests(self) -> dict[str, str]:
        return {name: layer.digest for name, layer in self.layers.items()}

    def layer_dir(self, name: str) -> Path:
        """Where layer ``name`` is at launch (after :meth:`materialize`)."""
        return self.lifecycle.buildpack_layers_dir / name

    def files_containing(self, needle: str | bytes) -> list[Path]:
        """Stored files of the image's layers and app that contain ``needle``.

        Layer metadata is searched too; a hit there is reported as the path
        ``<layer>.toml`` under the image's store.
        """
        data = needle.encode() if isinstance(needle, str) else needle
        found = []
        roots = [layer.path for layer in self.layers.values()] + [self.app_dir]
        for root in roots:
            for path in [root, *_walk_sorted(root)]:
                is_file = path.is_file() and not path.is_symlink()
                if is_file and data in path.read_bytes():
                    found.append(path)
        for name, layer in sorted(self.layers.items()):
            if data in tomli_w.dumps({"metadata": layer.metadata}).encode():
                found.append(self.app_dir.parent / f"{name}.toml")
        return found

    def materialize(self, root: Path | None = None) -> Path:
        """Lay the image out under ``root`` and return ``<root>/layers``.

        Layers go to ``<root>/layers/<escaped buildpack id>/<layer>`` and the app to
        ``<root>/workspace``. Only the default root (the lifecycle's own) gives the
        paths that were baked in at build time; another root is for inspection.
        """
        default = root is None or Path(root) == self.lifecycle.root
        root = self.lifecycle.root if root is None else Path(root)
        if default and self.lifecycle._materialized is self:
            return root / "layers"
        layers_root = root / "layers"
        workspace = root / "workspace"
        _empty_dir(layers_root)
        _empty_dir(workspace)
        bp_dir = layers_root / self.lifecycle.buildpack.escaped_id
        bp_dir.mkdir()
        for name, layer in self.layers.items():
            _link_tree(layer.path, bp_dir / name)
        workspace.rmdir()
        _link_tree(self.app_dir, workspace)
        if default:
            self.lifecycle._materialized = self
        return layers_root

    def launch_env(
        self, process: str | None = None, env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Return the environment the launcher gives a process of this image.

        ``env`` is the run container's own environment (``docker run -e``); it
        defaults to the PATH and HOME of the lifecycle's ``outer_env`` (the run
        image is taken to match the build image). exec.d programs run here too.
        """
        self.materialize()
        return _launch_env(self, process, env)

    def process_argv(
        self, process: str, args: Sequence[str] | None = None
    ) -> list[str]:
        """The argv of a ``launch.toml`` process; ``args`` replace its default args."""
        for entry in self.launch.get("processes", []):
            if entry["type"] == process:
                given = list(args) if args is not None else list(entry.get("args", []))
                return list(entry["command"]) + given
        raise KeyError(f"no process type {process!r} in launch.toml")

    def default_process(self) -> str | None:
        for entry in self.launch.get("processes", []):
            if entry.get("default"):
                return str(entry["type"])
        return None

    def run(
        self,
        argv: Sequence[str] | None = None,
        *,
        process: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the launch environment, in the app directory.

        With ``process`` the process's command runs (``argv``, if given, replaces
        its default args), like ``docker run img`` or ``/cnb/process/<type>``;
        without it ``argv`` runs as given, like ``docker run img -- argv``.
        Output is captured as text (stdout and stderr apart).
        """
        command, launch_env, cwd = self.launch_command(argv, process=process, env=env)
        return subprocess.run(
            command,
            check=False,
            env=launch_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def launch_command(
        self,
        argv: Sequence[str] | None = None,
        *,
        process: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[list[str], dict[str, str], Path]:
        """Return ``(argv, env, cwd)`` to start yourself, e.g. with Popen."""
        launch_env = self.launch_env(process, env)
        cwd = self.lifecycle.workspace
        if process is not None:
            command = self.process_argv(process, argv)
            for entry in self.launch.get("processes", []):
                if entry["type"] == process and entry.get("working-dir"):
                    cwd = cwd / entry["working-dir"]
        elif argv:
            command = list(argv)
        else:
            raise ValueError("give argv or process")
        found = shutil.which(command[0], path=launch_env.get("PATH", ""))
        if found is None:
            raise FileNotFoundError(f"{command[0]!r} is not on the launch PATH")
        return [found, *command[1:]], launch_env, cwd


@dataclass
class BuildResult:
    """The outcome of one build: detect, restore, ``bin/build`` and export.

    ``output`` is what ``bin/build`` printed (stdout and stderr interleaved);
    ``lifecycle_log`` what the emulated lifecycle said around it (restore and
    export lines, warnings); ``error`` the lifecycle's own failure, if any.
    ``layer_tomls`` holds every ``<layer>.toml`` as ``bin/build`` left it.
    """

    detect: DetectResult
    exit_code: int
    output: str
    lifecycle_log: list[str]
    error: str | None = None
    layer_tomls: dict[str, dict] = field(default_factory=dict)
    cache: Cache | None = None
    _image: Image | None = None

    @property
    def success(self) -> bool:
        return self.detect.passed and self.exit_code == 0 and self.error is None

    @property
    def image(self) -> Image:
        """The exported image; raises :class:`BuildFailed` with the log if none."""
        if self._image is None:
            raise BuildFailed(self.describe_failure())
        return self._image

    def describe_failure(self) -> str:
        if not self.detect.passed:
            return (
                f"detect failed (exit {self.detect.exit_code}, "
                f"{self.detect.error or 'no error from the lifecycle'}):\n"
                f"{self.detect.output}"
            )
        reason = self.error or f"bin/build exited with {self.exit_code}"
        lifecycle = "\n".join(self.lifecycle_log)
        return f"build failed: {reason}\n{self.output}\n--- lifecycle ---\n{lifecycle}"


# --- The buildpack ---------------------------------------------------------------


@dataclass(frozen=True)
class Buildpack:
    """The parts of ``buildpack.toml`` the lifecycle uses."""

    directory: Path
    id: str
    version: str
    api: str
    targets: tuple[dict, ...]

    @classmethod
    def load(cls, directory: Path) -> Buildpack:
        with open(directory / "buildpack.toml", "rb") as handle:
            descriptor = tomllib.load(handle)
        info = descriptor["buildpack"]
        return cls(
            directory=directory,
            id=info["id"],
            version=info["version"],
            api=str(descriptor["api"]),
            targets=tuple(descriptor.get("targets", [])),
        )

    @property
    def escaped_id(self) -> str:
        return self.id.replace("/", "_")


@dataclass(frozen=True)
class Target:
    os: str
    arch: str
    distro_name: str
    distro_version: str

    @classmethod
    def of_host(cls) -> Target:
        """The host as the lifecycle would see it: /etc/os-release for the distro."""
        arches = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
        release = _os_release()
        return cls(
            os="linux",
            arch=arches.get(platform.machine(), platform.machine()),
            distro_name=release.get("ID", ""),
            distro_version=release.get("VERSION_ID", ""),
        )

    def env(self) -> dict[str, str]:
        values = {"CNB_TARGET_OS": self.os, "CNB_TARGET_ARCH": self.arch}
        if self.distro_name:
            values["CNB_TARGET_DISTRO_NAME"] = self.distro_name
        if self.distro_version:
            values["CNB_TARGET_DISTRO_VERSION"] = self.distro_version
        return values


# --- The lifecycle ---------------------------------------------------------------

Previous = Image | BuildResult | None
PlatformEnv = Mapping[str, str | None]


class Lifecycle:
    """Detects, builds and launches one buildpack under ``root``.

    ``outer_env`` is the build container's environment before filtering (default:
    this process's). ``platform_env`` is the ``<platform>/env`` every run starts
    from; the ``env`` given to a run is laid over it, where a value of None removes
    a variable. ``earlier_provides`` names what buildpacks before ours in the group
    would provide, so a plan that requires e.g. ``cpython`` resolves.
    """

    def __init__(
        self,
        buildpack_dir: Path,
        root: Path,
        *,
        outer_env: Mapping[str, str] | None = None,
        platform_env: Mapping[str, str] | None = None,
        earlier_provides: Iterable[str] = (),
        target: Target | None = None,
        timeout: float = 900,
        echo: bool = True,
    ) -> None:
        self.buildpack = Buildpack.load(Path(buildpack_dir))
        if self.buildpack.api != "0.12":
            raise ValueError(f"emulating Buildpack API 0.12, got {self.buildpack.api}")
        self.root = Path(root)
        self.outer_env = dict(os.environ if outer_env is None else outer_env)
        self.platform_env = dict(platform_env or {})
        self.earlier_provides = frozenset(earlier_provides)
        self.target = target or Target.of_host()
        self.timeout = timeout
        self.echo = echo
        self._builds = 0
        self._materialized: Image | None = None
        for name in ("layers", "workspace", "platform", "images", "caches"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    # -- fixed paths --------------------------------------------------------------

    @property
    def layers_dir(self) -> Path:
        return self.root / "layers"

    @property
    def buildpack_layers_dir(self) -> Path:
        return self.layers_dir / self.buildpack.escaped_id

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def platform_dir(self) -> Path:
        return self.root / "platform"

    # -- detect -------------------------------------------------------------------

    def run_detect(self, app_dir: Path, env: PlatformEnv | None = None) -> DetectResult:
        """Copy the app into the workspace and run ``bin/detect`` on it."""
        self._prepare(app_dir, env or {})
        return self._detect()

    def _detect(self) -> DetectResult:
        plan_path = self.root / "detect" / "plan.toml"
        plan_path.parent.mkdir(exist_ok=True)
        plan_path.write_bytes(b"")
        command = [
            str(self.buildpack.directory / "bin" / "detect"),
            str(self.platform_dir),
            str(plan_path),
        ]
        env = self._buildpack_env()
        env["CNB_BUILD_PLAN_PATH"] = str(plan_path)
        exit_code, output = self._run(command, env)
        plan: dict = {}
        result = DetectResult(exit_code=exit_code, output=output, plan=plan)
        if exit_code != 0:
            return result
        try:
            result.plan = tomllib.loads(plan_path.read_text())
        except tomllib.TOMLDecodeError as error:
            result.error = f"cannot parse the build plan: {error}"
            return result
        result.error = self._check_target()
        if result.error is None:
            result.entries, result.error = _resolve_plan(
                result.plan, self.earlier_provides
            )
        return result

    def _check_target(self) -> str | None:
        targets = self.buildpack.targets
        if not targets:
            return None
        for target in targets:
            if target.get("os", self.target.os) != self.target.os:
                continue
            if target.get("arch", self.target.arch) != self.target.arch:
                continue
            distros = target.get("distros", [])
            if distros and not any(
                d.get("name") == self.target.distro_name
                and d.get("version", self.target.distro_version)
                == self.target.distro_version
                for d in distros
            ):
                continue
            return None
        return "unable to satisfy target os/arch constraints"

    # -- build --------------------------------------------------------------------

    def run_build(
        self,
        app_dir: Path,
        env: PlatformEnv | None = None,
        previous: Previous = None,
        *,
        cache: Cache | None = None,
        clear_cache: bool = False,
    ) -> BuildResult:
        """Build ``app_dir`` as ``pack build`` would, over ``previous``.

        ``env`` becomes ``<platform>/env`` (``pack build --env``). ``previous`` is
        the image a rebuild exports over; passing the previous :class:`BuildResult`
        also brings its cache, as a rebuild with the same image name does.
        ``clear_cache`` is ``pack build --clear-cache``.
        """
        previous_image: Image | None
        if isinstance(previous, BuildResult):
            previous_image = previous.image
            if cache is None:
                cache = previous.cache
        else:
            previous_image = previous

        self._builds += 1
        number = self._builds
        log: list[str] = []
        self._prepare(app_dir, env or {})
        _empty_dir(self.layers_dir)
        self._materialized = None

        detect = self._detect()
        if not detect.passed:
            return BuildResult(
                detect, exit_code=detect.exit_code, output="", lifecycle_log=log
            )

        bp_layers = self.buildpack_layers_dir
        bp_layers.mkdir()
        self._restore(bp_layers, previous_image, cache, clear_cache, log)

        plan_path = self.root / "build" / "plan.toml"
        plan_path.parent.mkdir(exist_ok=True)
        plan_path.write_text(tomli_w.dumps({"entries": detect.entries}))
        env_vars = self._buildpack_env()
        env_vars["CNB_BP_PLAN_PATH"] = str(plan_path)
        env_vars["CNB_LAYERS_DIR"] = str(bp_layers)
        command = [
            str(self.buildpack.directory / "bin" / "build"),
            str(bp_layers),
            str(self.platform_dir),
            str(plan_path),
        ]
        exit_code, output = self._run(command, env_vars)
        result = BuildResult(
            detect, exit_code=exit_code, output=output, lifecycle_log=log
        )
        if exit_code != 0:
            return result

        try:
            result.layer_tomls = _read_layer_tomls(bp_layers)
            launch = _read_launch_toml(bp_layers / "launch.toml")
            _check_unmet(bp_layers / "build.toml", detect.entries)
            _set_aside_ignored(bp_layers, result.layer_tomls)
            image_dir = self.root / "images" / str(number)
            cache_dir = self.root / "caches" / str(number)
            layers, cached = self._export(
                bp_layers, result.layer_tomls, previous_image, image_dir, cache_dir, log
            )
        except _LifecycleError as error:
            result.error = str(error)
            log.append(f"ERROR: {error}")
            return result

        store_path = bp_layers / "store.toml"
        store = tomllib.loads(store_path.read_text()) if store_path.is_file() else None
        os.replace(self.workspace, image_dir / "workspace")
        self.workspace.mkdir()
        result._image = Image(
            lifecycle=self,
            number=number,
            layers=layers,
            launch=launch,
            store=store,
            app_dir=image_dir / "workspace",
        )
        result.cache = Cache(cached)
        return result

    def _restore(
        self,
        bp_layers: Path,
        previous: Image | None,
        cache: Cache | None,
        clear_cache: bool,
        log: list[str],
    ) -> None:
        ident = self._identifier
        if previous is not None and previous.store is not None:
            (bp_layers / "store.toml").write_text(tomli_w.dumps(previous.store))
        if clear_cache:
            log.append("Skipping buildpack layer analysis")
            return

        app_layers = previous.layers if previous is not None else {}
        cached_layers = cache.layers if cache is not None else {}
        # name -> (digest the metadata was recorded with, whether it is cache=true)
        restored: dict[str, tuple[str, bool]] = {}
        for name, layer in sorted(app_layers.items()):
            if not layer.types.launch:
                continue
            if layer.types.build and not layer.types.cache:
                continue  # the buildpack must recreate a build=true layer
            log.append(f'Restoring metadata for "{ident(name)}" from app image')
            _write_metadata_only(bp_layers / f"{name}.toml", layer.metadata)
            restored[name] = (layer.digest, layer.types.cache)
        for name, entry in sorted(cached_layers.items()):
            if not entry.types.cache:
                continue
            if entry.types.launch and name in app_layers:
                continue  # its metadata came from the app image
            log.append(f'Restoring metadata for "{ident(name)}" from cache')
            _write_metadata_only(bp_layers / f"{name}.toml", entry.metadata)
            restored[name] = (entry.digest, True)

        for name, (digest, is_cached) in sorted(restored.items()):
            if not is_cached:
                continue
            found = cached_layers.get(name)
            if found is None or found.digest != digest:
                why = "not in cache" if found is None else "wrong sha"
                log.append(f'Removing "{ident(name)}", {why}')
                (bp_layers / f"{name}.toml").unlink()
                continue
            log.append(f'Restoring data for "{ident(name)}" from cache')
            shutil.copytree(found.path, bp_layers / name, symlinks=True)

    def _export(
        self,
        bp_layers: Path,
        tomls: Mapping[str, dict],
        previous: Image | None,
        image_dir: Path,
        cache_dir: Path,
        log: list[str],
    ) -> tuple[dict[str, Layer], dict[str, CachedLayer]]:
        ident = self._identifier
        previous_layers = previous.layers if previous is not None else {}
        layers: dict[str, Layer] = {}
        cached: dict[str, CachedLayer] = {}
        (image_dir / "layers").mkdir(parents=True)
        cache_dir.mkdir(parents=True)

        for name, data in sorted(tomls.items()):
            types = LayerTypes.from_toml(data)
            metadata = dict(data.get("metadata", {}))
            directory = bp_layers / name
            has_contents = directory.is_dir()
            digest = ""
            if has_contents and (types.launch or types.cache):
                digest = layer_digest(
                    directory, f"layers/{self.buildpack.escaped_id}/{name}"
                )

            if types.launch:
                before = previous_layers.get(name)
                if has_contents:
                    stored = image_dir / "layers" / name
                    shutil.copytree(
                        directory, stored, symlinks=True, copy_function=os.link
                    )
                    unchanged = before is not None and before.digest == digest
                    status = "unchanged" if unchanged else "new"
                    verb = "Reusing" if unchanged else "Adding"
                    log.append(f"{verb} layer '{ident(name)}'")
                    layers[name] = Layer(name, types, metadata, digest, stored, status)
                else:
                    if types.cache:
                        raise _LifecycleError(
                            f"layer '{ident(name)}' is cache=true but has no contents"
                        )
                    if before is None:
                        raise _LifecycleError(
                            f"cannot reuse '{ident(name)}', previous image has no "
                            f"metadata for layer '{ident(name)}'"
                        )
                    log.append(f"Reusing layer '{ident(name)}'")
                    layers[name] = Layer(
                        name, types, metadata, before.digest, before.path, "reused"
                    )

            if types.cache:
                if not has_contents:
                    log.append(
                        f"Warning: Failed to cache layer '{ident(name)}' "
                        "because it has no contents"
                    )
                    continue
                stored = cache_dir / name
                shutil.copytree(directory, stored, symlinks=True, copy_function=os.link)
                log.append(f"Adding cache layer '{ident(name)}'")
                cached[name] = CachedLayer(name, types, metadata, digest, stored)
        return layers, cached

    # -- shared steps ---------------------------------------------------------------

    def _identifier(self, layer: str) -> str:
        return f"{self.buildpack.id}:{layer}"

    def _prepare(self, app_dir: Path, env: PlatformEnv) -> None:
        """Fresh workspace with a copy of the app, fresh HOME and platform env."""
        _empty_dir(self.root / "home")
        _empty_dir(self.workspace)
        self.workspace.rmdir()
        shutil.copytree(app_dir, self.workspace, symlinks=True)
        self._materialized = None
        _empty_dir(self.platform_dir)
        env_dir = self.platform_dir / "env"
        env_dir.mkdir()
        merged = {**self.platform_env, **env}
        for name, value in merged.items():
            if value is not None:
                (env_dir / name).write_text(value)

    def _buildpack_env(self) -> dict[str, str]:
        """The environment of bin/detect and bin/build (lifecycle NewBuildEnv)."""
        env = {k: v for k, v in self.outer_env.items() if k in PASSED_THROUGH}
        env["HOME"] = str(self.root / "home")
        env_dir = self.platform_dir / "env"
        for entry in sorted(env_dir.iterdir()):
            value = entry.read_text()
            if entry.name in ROOT_DIR_VARIABLES:
                env[entry.name] = value + os.pathsep + env.get(entry.name, "")
            else:
                env[entry.name] = value
        env.update(self.target.env())
        env["CNB_BUILDPACK_DIR"] = str(self.buildpack.directory)
        env["CNB_PLATFORM_DIR"] = str(self.platform_dir)
        env["CNB_EXEC_ENV"] = EXEC_ENV
        return env

    def _run(self, command: list[str], env: dict[str, str]) -> tuple[int, str]:
        """Run with stdout and stderr merged, echoing lines as they come."""
        process = subprocess.Popen(
            command,
            cwd=self.workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        timer = threading.Timer(self.timeout, process.kill)
        timer.start()
        lines = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if self.echo:
                    sys.stdout.write(line)
            exit_code = process.wait()
        finally:
            timer.cancel()
        if exit_code < 0:
            lines.append(f"[lifecycle emulator: killed by signal {-exit_code}]\n")
        return exit_code, "".join(lines)


# --- Plan resolution ---------------------------------------------------------------


def _resolve_plan(
    plan: Mapping[str, Any], earlier_provides: frozenset[str]
) -> tuple[list[dict], str | None]:
    """Pick the first plan alternative that resolves in a group of one.

    Returns the Buildpack Plan entries (one per require our buildpack provides) or
    an error. A require met only by ``earlier_provides`` gives no entry to us.
    """
    alternatives = [plan] + list(plan.get("or", []))
    for alternative in alternatives:
        provides = {entry["name"] for entry in alternative.get("provides", [])}
        requires = alternative.get("requires", [])
        for entry in requires:
            if "version" in entry:
                return [], (
                    f"require {entry['name']!r} has a version key, which is not "
                    "supported; metadata.version should be used instead"
                )
        required = {entry["name"] for entry in requires}
        if provides - required:
            continue  # something provided that nobody requires
        if required - provides - earlier_provides:
            continue  # something required that nobody provides
        entries = [
            {"name": entry["name"], "metadata": dict(entry.get("metadata", {}))}
            for entry in requires
            if entry["name"] in provides
        ]
        return entries, None
    return [], "no plan alternative resolved (provides and requires do not match)"


# --- Layer files -------------------------------------------------------------------


class _LifecycleError(Exception):
    pass


def _read_layer_tomls(bp_layers: Path) -> dict[str, dict]:
    tomls = {}
    for path in sorted(bp_layers.glob("*.toml")):
        if path.name in NOT_LAYERS:
            continue
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise _LifecycleError(f"cannot parse {path.name}: {error}") from None
        misplaced = sorted({"launch", "build", "cache"} & data.keys())
        if misplaced:
            raise _LifecycleError(
                f"the launch, cache and build flags should be in the types table of "
                f"{path}"
            )
        tomls[path.stem] = data
    return tomls


def _set_aside_ignored(bp_layers: Path, tomls: Mapping[str, dict]) -> None:
    """An all-false layer's directory is renamed to ``<layer>.ignore``."""
    for name, data in tomls.items():
        types = LayerTypes.from_toml(data)
        directory = bp_layers / name
        if not (types.launch or types.build or types.cache) and directory.is_dir():
            directory.rename(bp_layers / f"{name}.ignore")


def _read_launch_toml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        launch = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise _LifecycleError(f"cannot parse launch.toml: {error}") from None
    defaults = 0
    for process in launch.get("processes", []):
        kind = process.get("type", "")
        if not _PROCESS_TYPE.match(kind):
            raise _LifecycleError(f"invalid process type {kind!r}")
        if "direct" in process:
            raise _LifecycleError(
                "process.direct is not supported on this buildpack version"
            )
        command = process.get("command")
        if not (
            isinstance(command, list)
            and command
            and all(isinstance(part, str) for part in command)
        ):
            raise _LifecycleError(
                f"process {kind!r}: command must be an array of strings"
            )
        if not all(isinstance(arg, str) for arg in process.get("args", [])):
            raise _LifecycleError(f"process {kind!r}: args must be strings")
        defaults += bool(process.get("default", False))
    if defaults > 1:
        raise _LifecycleError("multiple default process types aren't allowed")
    return launch


def _check_unmet(path: Path, entries: list[dict]) -> None:
    if not path.is_file():
        return
    build = tomllib.loads(path.read_text())
    planned = {entry["name"] for entry in entries}
    for unmet in build.get("unmet", []):
        if unmet.get("name") not in planned:
            raise _LifecycleError(
                f"unmet.name '{unmet.get('name')}' must match a requested dependency"
            )


def _write_metadata_only(path: Path, metadata: Mapping[str, Any]) -> None:
    """Write a restored record as the lifecycle does: ``[metadata]`` only.

    The lifecycle keeps a launch layer's metadata in the image label as JSON and
    decodes it into Go's ``interface{}``, so every number comes back as a float;
    going through JSON with floats here shows the buildpack the same thing.
    """
    as_json = json.loads(json.dumps(dict(metadata)), parse_int=float)
    path.write_text(tomli_w.dumps({"metadata": as_json}))


# --- Digests -----------------------------------------------------------------------

# The lifecycle sets every mtime in a layer tar to this (archive.NormalizedModTime).
_NORMALISED_MTIME = 315532801  # 1980-01-01T00:00:01Z


class _Hasher:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def layer_digest(directory: Path, arcname: str) -> str:
    """``sha256:<hex>`` of a normalised tar of ``directory`` stored as ``arcname``."""
    hasher = _Hasher()
    with tarfile.open(fileobj=hasher, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for path in [directory, *_walk_sorted(directory)]:
            relative = path.relative_to(directory).as_posix()
            info = tarfile.TarInfo(
                arcname if relative == "." else f"{arcname}/{relative}"
            )
            stat = path.lstat()
            info.mode = stat.st_mode & 0o7777
            info.mtime = _NORMALISED_MTIME
            if path.is_symlink():
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif path.is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = stat.st_size
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    return "sha256:" + hasher.hash.hexdigest()


def _walk_sorted(directory: Path) -> list[Path]:
    found = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        found.append(entry)
        if entry.is_dir() and not entry.is_symlink():
            found.extend(_walk_sorted(entry))
    return found


# --- Launch environment ----------------------------------------------------------


def _launch_env(
    image: Image, process: str | None, run_env: Mapping[str, str] | None
) -> dict[str, str]:
    lifecycle = image.lifecycle
    if run_env is None:
        outer = lifecycle.outer_env
        run_env = {
            "PATH": outer.get("PATH", os.defpath),
            "HOME": outer.get("HOME", "/"),
        }
    env = dict(run_env)
    env["CNB_LAYERS_DIR"] = str(lifecycle.layers_dir)
    env["CNB_APP_DIR"] = str(lifecycle.workspace)
    env["CNB_PLATFORM_API"] = PLATFORM_API

    layer_dirs = [image.layer_dir(name) for name in sorted(image.layers)]
    for layer in layer_dirs:
        for variable, sub in (("PATH", "bin"), ("LD_LIBRARY_PATH", "lib")):
            if (layer / sub).is_dir():
                _prepend(env, variable, str(layer / sub), os.pathsep)
        apply_env_dir(env, layer / "env")
        apply_env_dir(env, layer / "env.launch")
        if process is not None:
            apply_env_dir(env, layer / "env.launch" / process)

    for layer in layer_dirs:
        programs = _executables(layer / "exec.d")
        if process is not None:
            programs += _executables(layer / "exec.d" / process)
        for program in programs:
            env.update(_run_exec_d(program, env, lifecycle.workspace))
    return env


def apply_env_dir(env: dict[str, str], directory: Path) -> None:
    """Apply one buildpack env directory to ``env`` in place (spec §1.5 rules).

    The file name up to the first ``.`` is the variable; the suffix picks the
    action (none and ``.override`` override, ``.default``, ``.prepend``,
    ``.append``); ``<NAME>.delim`` holds the delimiter, else values are joined
    with nothing. Contents are used verbatim.
    """
    if not directory.is_dir():
        return
    files = sorted(p for p in directory.iterdir() if p.is_file())
    delims = {
        p.name.split(".", 1)[0]: p.read_text()
        for p in files
        if p.name.endswith(".delim")
    }
    for path in files:
        name, _, action = path.name.partition(".")
        if action == "delim":
            continue
        value = path.read_text()
        delim = delims.get(name, "")
        if action in ("", "override"):
            env[name] = value
        elif action == "default":
            if not env.get(name):
                env[name] = value
        elif action == "prepend":
            _prepend(env, name, value, delim)
        elif action == "append":
            current = env.get(name, "")
            env[name] = current + delim + value if current else value


def _prepend(env: dict[str, str], name: str, value: str, delim: str) -> None:
    current = env.get(name, "")
    env[name] = value + delim + current if current else value


def _executables(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.is_file() and os.access(p, os.X_OK)
    )


_FD3_TRAMPOLINE = (
    "import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def _run_exec_d(program: Path, env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """Run an exec.d program; it writes TOML ``NAME = "value"`` lines to fd 3."""
    read_end, write_end = os.pipe()
    try:
        # A Python trampoline moves the pipe to descriptor 3, then becomes the
        # program (dash cannot redirect descriptors above 9).
        process = subprocess.Popen(
            [sys.executable, "-c", _FD3_TRAMPOLINE, str(write_end), str(program)],
            env=dict(env),
            cwd=cwd,
            pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as output:
        text = output.read()
    if process.wait() != 0:
        raise RuntimeError(f"exec.d program {program} exited with {process.returncode}")
    return {key: str(value) for key, value in tomllib.loads(text).items()}


# --- Small file helpers ------------------------------------------------------------


def _empty_dir(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def _link_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True, copy_function=os.link)


def _os_release() -> dict[str, str]:
    values = {}
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(candidate).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"')
        break
    return values
