"""``bin/build``: the build, as a short script of stages.

1. Read what the app declares, and check the Python it asks for.
2. Resolve the full pinned set (or reuse the previous build's, if no input changed).
3. Plan the layers: torch family, heavy packages, the rest.
4. Reuse each layer whose key is unchanged; install the others.
5. Join the layers with a small venv, and write the start command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import launch
from .cnb import BuildContext, Layer, LayerTypes, write_launch_toml
from .config import Config, load_platform_env
from .declared import read_declaration
from .errors import BuildpackError
from .indexes import AppIndexes, app_indexes, redact, redact_text
from .install import (
    VENV_LAYER,
    create_venv,
    directory_size,
    install_layer,
    venv_environment,
)
from .layers import LayerKey, LayerPlan, key_changes, plan_layers
from .output import Log, format_duration, format_size
from .python_env import PythonInfo, check_request
from .resolve import (
    Pin,
    Resolution,
    explicit_sources,
    from_lock,
    marker_environment,
    resolve,
    torch_route,
    wheel_sizes,
)
from .uvtool import UV_VERSION, Uv, ensure_uv, keep_cached

# Bump when resolution changes meaning, so stored resolutions are not reused.
RESOLVER_SCHEMA = 1
# uv's environment settings that change what a resolution picks: a change to any of
# them means resolving again rather than reusing the previous build's pins.
RESOLUTION_SETTINGS = (
    "UV_EXCLUDE_NEWER",
    "UV_PRERELEASE",
    "UV_RESOLUTION",
    "UV_INDEX_STRATEGY",
    "UV_NO_BINARY",
    "UV_ONLY_BINARY",
    "UV_CONSTRAINT",
    "UV_OVERRIDE",
    "UV_TORCH_BACKEND",
)
WORKDIR_NAME = ".ml-buildpack-tmp"
LAUNCH_ONLY = LayerTypes(launch=True)


def main(argv: Sequence[str]) -> int:
    ctx = BuildContext.from_process(argv, os.environ)
    env = load_platform_env(ctx.platform_dir)
    log = Log()
    workdir = ctx.layers_dir / WORKDIR_NAME
    try:
        config = Config.from_env(env)
        log.debug_enabled = config.debug
        Builder(ctx, env, config, log, workdir).run()
        return 0
    except BuildpackError as error:
        sys.stdout.write("\n" + error.render(ctx.app_dir))
        sys.stdout.flush()
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Builder:
    """One build: the stages above, sharing the context they need."""

    def __init__(
        self,
        ctx: BuildContext,
        env: Mapping[str, str],
        config: Config,
        log: Log,
        workdir: Path,
    ) -> None:
        self.ctx = ctx
        self.env = dict(env)
        self.config = config
        self.log = log
        self.workdir = workdir
        self.python = PythonInfo.current()
        self._uv: Optional[Uv] = None
        self.declared_hashes: Dict[str, Tuple[str, ...]] = {}
        self.pin_indexes: Dict[str, str] = {}
        self.summary: List[Tuple[str, str, str, str, str]] = []

    # -- stages --------------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        declaration = self.read_inputs()
        indexes = self.app_indexes(declaration)
        resolution, sizes, resolution_key = self.resolve(declaration, indexes)
        self.warn_about_gpu_builds(resolution)
        plans = plan_layers(resolution.pins, self.config, sizes, resolution.torch_index)
        self.log_plan(plans)
        self.install_layers(plans, resolution, indexes, sizes, resolution_key)
        self.write_processes(resolution)
        if self._uv is None:
            keep_cached(self.ctx.layers_dir, self.ctx.target.arch)
        self.log.header("Summary")
        self.log.table(("layer", "status", "packages", "size", "time"), self.summary)
        self.log.step(
            f"Build finished in {format_duration(time.monotonic() - started)}"
        )

    def read_inputs(self):
        self.log.header("Reading the app's dependencies")
        declaration = read_declaration(self.ctx.app_dir, self.config, self.env)
        if not declaration.files or str(declaration.kind) == "none":
            raise BuildpackError(
                "No dependency file",
                "The app has no requirements.txt, pyproject.toml, uv.lock, poetry.lock "
                "or Pipfile.lock, so there is nothing for this buildpack to install.",
                "Add a requirements.txt listing the app's packages, or set "
                "BP_ML_REQUIREMENTS_FILE to the file that lists them.",
            )
        files = ", ".join(self._relative(f) for f in declaration.files) or "none"
        self.log.step(f"Using {declaration.kind} ({files})")
        self.log.header("Determining Python")
        self.log.step(
            f"Python {self.python.version} ({self.python.abi}, "
            f"{self.python.platform}) at {self.python.executable}"
        )
        request = declaration.python_request
        if request is not None:
            check_request(self.python, request)
            self.log.step(
                f"Matches the requested Python {request.text} "
                f"({request.origin.describe(self.ctx.app_dir)})"
            )
        return declaration

    def app_indexes(self, declaration) -> AppIndexes:
        self.pin_indexes = {
            name: url for name, (_text, url) in explicit_sources(declaration).items()
        }
        self.declared_hashes = {
            r.name: tuple(r.hashes)
            for r in declaration.requirements
            if r.name and r.hashes
        }
        self.log.header("Choosing package indexes")
        options = declaration.index_options
        indexes = app_indexes(
            self.env,
            index_url=options.index_url.value if options.index_url else None,
            extra_index_urls=[u.value for u in options.extra_index_urls],
            find_links=[u.value for u in options.find_links],
            options=_pass_through_options(options.pass_through_options),
            trusted_hosts=[host.value.strip() for host in options.trusted_hosts],
            no_index=options.no_index is not None,
            torch_index_url=self.config.torch_index_url,
        )
        if indexes.no_index:
            links = ", ".join(indexes.find_links) or "none"
            self.log.step(f"No package index (--no-index); find-links: {links}")
        else:
            self.log.step(
                f"Package index: {indexes.default}"
                + "".join(f", {u}" for u in indexes.extra)
            )
        route = torch_route(self.config)
        if route.index_url:
            self.log.step(
                f"Torch family index ({self.config.torch_variant}): {route.index_url}"
            )
            for url in dict.fromkeys(indexes.scoped_to_torch):
                instead = ""
                if url.rstrip("/") != route.index_url.rstrip("/"):
                    instead = (
                        "; they come from BP_ML_TORCH_INDEX_URL "
                        f"({route.index_url}) instead"
                    )
                self.log.detail(
                    f"The app's index line {url} is used for torch, "
                    f"torchvision and torchaudio only{instead}"
                )
        return indexes

    def resolve(
        self, declaration, indexes: AppIndexes
    ) -> Tuple[Resolution, Dict[str, int], str]:
        self.log.header("Resolving dependencies")
        key = self.resolution_key(declaration, indexes)
        stored = Layer(self.ctx.layers_dir, VENV_LAYER).stored_metadata() or {}
        if (
            stored.get("resolution_key") == key
            and isinstance(stored.get("pins"), list)
            and not _has_redacted_requirement(stored["pins"])
        ):
            resolution, stored_sizes = _resolution_from_metadata(stored)
            if resolution.torch_index:
                # The stored URL has its credentials cut out; use the configured one.
                resolution.torch_index = torch_route(self.config).index_url
            self.log.step(
                "Using the previous build's resolution "
                f"({_packages(len(resolution.pins))}): no dependency input changed"
            )
            return resolution, stored_sizes, key
        sizes: Dict[str, int] = {}
        if declaration.is_locked:
            with self.log.timed(f"Taking the pins of {declaration.kind} as they are"):
                resolution = from_lock(
                    declaration, self.config, marker_environment(), self.log
                )
        else:
            uv = self.uv()
            workdir = self.workdir / "resolve"
            with self.log.timed(
                f"Resolving with uv {UV_VERSION} for Python {self.python.version}"
            ):
                resolution = resolve(
                    declaration,
                    self.config,
                    indexes,
                    self.python.executable,
                    uv,
                    workdir,
                    self.log,
                )
                if self.config.heavy_threshold_mb > 0:
                    sizes = wheel_sizes(
                        uv, workdir, self.python.executable, indexes, self.log
                    )
        self.log.step(f"{_packages(len(resolution.pins))} pinned")
        return resolution, sizes, key

    def warn_about_gpu_builds(self, resolution: Resolution) -> None:
        """Point at CPU builds this buildpack does not substitute by itself (F16)."""
        if self.config.torch_variant != "cpu":
            return
        pins = resolution.by_name()
        tensorflow = pins.get("tensorflow")
        if tensorflow is not None and "tensorflow-cpu" not in pins:
            self.log.warning(
                "tensorflow includes GPU support",
                f"tensorflow {tensorflow.version} on Linux ships CUDA support that a "
                "CPU image cannot use. For a smaller image, depend on tensorflow-cpu "
                f"(tensorflow-cpu=={tensorflow.version}) instead of tensorflow.",
            )

    def log_plan(self, plans: Sequence[LayerPlan]) -> None:
        self.log.header("Planning layers")
        for plan in plans:
            names = ", ".join(pin.describe() for pin in plan.pins[:4])
            more = f" and {len(plan.pins) - 4} more" if len(plan.pins) > 4 else ""
            self.log.step(f"{plan.name}: {names}{more} ({plan.reason})")

    def install_layers(
        self,
        plans: Sequence[LayerPlan],
        resolution: Resolution,
        indexes: AppIndexes,
        sizes: Mapping[str, int],
        resolution_key: str,
    ) -> None:
        self.log.header("Installing layers")
        self._forget_stale_layers({plan.name for plan in plans})
        venv_layer = Layer(self.ctx.layers_dir, VENV_LAYER)
        layer_paths = [self.ctx.layers_dir / plan.name for plan in plans]
        venv_python = create_venv(venv_layer, self.python, layer_paths)
        for plan in plans:
            self.install_one(plan, resolution, indexes, venv_python)
        venv_environment(venv_layer)
        venv_layer.write_record(
            LAUNCH_ONLY,
            {
                "resolution_key": resolution_key,
                "pins": _pins_metadata(resolution, sizes),
                "torch_index": redact(resolution.torch_index or ""),
                **self.python.key(),
            },
        )

    def install_one(
        self,
        plan: LayerPlan,
        resolution: Resolution,
        indexes: AppIndexes,
        venv_python: Path,
    ) -> None:
        layer = Layer(self.ctx.layers_dir, plan.name)
        index = resolution.torch_index if plan.from_torch_index else None
        key = LayerKey(
            pins=tuple(
                sorted(
                    redact_text(_with_local_digest(pin.requirement))
                    for pin in plan.pins
                )
            ),
            python=self.python.version,
            abi=self.python.abi,
            platform=self.python.platform,
            interpreter=self.python.executable,
            index=redact(index) if index else self._index_identity(plan, indexes),
            bytecode=self.config.compile_bytecode,
        )
        stored = layer.stored_metadata() or {}
        old_key = LayerKey.from_metadata(stored)
        if old_key == key and not layer.has_files():
            layer.write_record(LAUNCH_ONLY, stored)
            size = _whole_number(stored.get("size"))
            self.log.step(
                f"Reusing layer {plan.name}: its pins ({_packages(len(plan.pins))}), "
                "Python and index are unchanged"
            )
            self.summary.append(
                (plan.name, "reused", str(len(plan.pins)), format_size(size), "-")
            )
            return
        if old_key is None:
            self.log.step(f"Installing layer {plan.name} ({_packages(len(plan.pins))})")
        else:
            self.log.step(f"Reinstalling layer {plan.name} since:")
            for change in key_changes(old_key, key)[:12] or ["its files were present"]:
                self.log.detail(f"- {change}")
        started = time.monotonic()
        install_layer(
            layer,
            plan,
            self.uv(),
            venv_python,
            self.python,
            indexes,
            index,
            self.config.compile_bytecode,
            self.workdir,
            self.log,
            pin_hashes=self.declared_hashes,
            pin_indexes=self.pin_indexes,
        )
        elapsed = time.monotonic() - started
        size = directory_size(layer.path)
        metadata: Dict[str, Any] = key.to_metadata()
        metadata["size"] = size
        layer.write_record(LAUNCH_ONLY, metadata)
        self.log.detail(f"Installed {format_size(size)} in {format_duration(elapsed)}")
        self.summary.append(
            (
                plan.name,
                "installed",
                str(len(plan.pins)),
                format_size(size),
                format_duration(elapsed),
            )
        )

    def write_processes(self, resolution: Resolution) -> None:
        self.log.header("Setting the start command")
        installed = {pin.name for pin in resolution.pins}
        processes = launch.plan_processes(
            self.ctx.app_dir, installed, self.config.start_command
        )
        if not processes:
            self.log.warning(
                "No start command",
                "There is no Procfile, no web app found in main.py or app.py, and no "
                "BP_ML_START_COMMAND. The image will need a command at docker run.",
            )
            return
        for process in processes:
            marker = " (default)" if process.default else ""
            self.log.step(
                f"{process.type}{marker}: {process.command}  [{process.source}]"
            )
        write_launch_toml(self.ctx.layers_dir, [p.to_launch() for p in processes])

    # -- helpers -------------------------------------------------------------------

    def uv(self) -> Uv:
        if self._uv is None:
            self.log.step("Preparing uv")
            binary = ensure_uv(
                self.ctx.layers_dir, self.env, self.ctx.target.arch, self.log
            )
            cache = self.workdir / "uv-cache"
            cache.mkdir(parents=True, exist_ok=True)
            self._uv = Uv(binary, self.env, cache)
        return self._uv

    def resolution_key(self, declaration, indexes: AppIndexes) -> str:
        digest = hashlib.sha256()
        for path in sorted(declaration.files):
            digest.update(str(path).encode() + b"\0")
            digest.update(Path(path).read_bytes() + b"\0")
        settings = {
            "schema": RESOLVER_SCHEMA,
            "uv": UV_VERSION,
            **self.python.key(),
            "variant": self.config.torch_variant,
            "torch_index": redact(self.config.torch_index_url),
            "indexes": indexes.identity(),
            # Wheel sizes are looked up (and stored) only when the size rule is on.
            "sizes": self.config.heavy_threshold_mb > 0,
            "uv_settings": {
                name: self.env[name] for name in RESOLUTION_SETTINGS if name in self.env
            },
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        for declared in declaration.requirements:
            digest.update(_with_local_digest(declared.text).encode())
        return digest.hexdigest()

    def _index_identity(self, plan: LayerPlan, indexes: AppIndexes) -> str:
        identity = ", ".join(indexes.identity())
        tied = sorted(
            f"{pin.name} from {redact(self.pin_indexes[pin.name])}"
            for pin in plan.pins
            if pin.name in self.pin_indexes
        )
        return identity + "".join(f"; {entry}" for entry in tied)

    def _forget_stale_layers(self, planned: set) -> None:
        """Drop restored records of layers this build no longer makes."""
        for toml_path in self.ctx.layers_dir.glob("*.toml"):
            name = toml_path.stem
            if (
                name in planned
                or name in (VENV_LAYER, "uv")
                or name in ("launch", "build", "store")
            ):
                continue
            self.log.step(
                f"Removing layer {name}: no package of this build belongs in it"
            )
            Layer(self.ctx.layers_dir, name).reset()

    def _relative(self, path) -> str:
        try:
            return str(Path(path).relative_to(self.ctx.app_dir))
        except ValueError:
            return str(path)


def _pass_through_options(options: Sequence[Any]) -> List[str]:
    """uv flags for the requirements' option lines that change what is resolved.

    ``--pre``, ``--only-binary`` and ``--no-binary`` carry over. ``--prefer-binary``
    and ``--use-feature`` are pip's own and mean nothing to uv;
    ``--require-hashes`` is honoured by passing every declared hash at install.
    """
    args: List[str] = []
    for option in options:
        text = option.value.strip()
        flag, _, value = text.replace("=", " ", 1).partition(" ")
        if flag == "--pre":
            args += ["--prerelease", "allow"]
        elif flag in ("--only-binary", "--no-binary") and value.strip():
            args += [flag, value.strip()]
    return args


_SKIPPED_IN_LOCAL_PACKAGES = {".git", "__pycache__", "build", "dist", ".venv", ".tox"}


def _with_local_digest(requirement: str) -> str:
    """``requirement`` plus a digest of its files when it names a local path.

    A local package's pin (``mylib @ file:///workspace/libs/mylib``) stays the same
    when its code changes; the digest makes that change visible to the keys that
    decide reuse.
    """
    _, marker, location = requirement.partition("file://")
    if not marker:
        if not requirement.startswith("/"):
            return requirement
        location = requirement
    path = Path(location.split()[0].split("#")[0])
    if not path.exists():
        return requirement
    digest = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not _SKIPPED_IN_LOCAL_PACKAGES & set(p.relative_to(path).parts)
            and not p.name.endswith(".pyc")
        )
    )
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else "").encode())
        digest.update(file.read_bytes())
    return f"{requirement} #sha256={digest.hexdigest()[:16]}"


def _packages(count: int) -> str:
    return f"{count} package" if count == 1 else f"{count} packages"


def _whole_number(value: Any) -> Optional[int]:
    """A number read back from layer metadata, or None.

    The lifecycle keeps metadata in an image label as JSON, so an integer written
    into ``<layer>.toml`` comes back from the previous image as a float.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _pins_metadata(
    resolution: Resolution, sizes: Mapping[str, int]
) -> List[Dict[str, Any]]:
    rows = []
    for pin in resolution.pins:
        row: Dict[str, Any] = {
            "name": pin.name,
            "version": pin.version,
            "requirement": redact_text(pin.requirement),
            "via": list(pin.via),
        }
        if pin.index:
            row["index"] = redact(pin.index)
        if pin.name in sizes:
            row["size"] = sizes[pin.name]
        rows.append(row)
    return rows


def _has_redacted_requirement(rows: List[Any]) -> bool:
    """True when a stored requirement had its credentials cut out (``://***@``).

    Such a pin cannot be installed again as stored, so the build resolves anew.
    """
    return any("://***@" in str(row.get("requirement", "")) for row in rows)


def _resolution_from_metadata(
    stored: Mapping[str, Any],
) -> Tuple[Resolution, Dict[str, int]]:
    pins = []
    sizes: Dict[str, int] = {}
    for row in stored["pins"]:
        pins.append(
            Pin(
                row["name"],
                row.get("version", ""),
                row["requirement"],
                row.get("index"),
                tuple(row.get("via", ())),
            )
        )
        size = _whole_number(row.get("size"))
        if size is not None:
            sizes[row["name"]] = size
    torch_index = stored.get("torch_index") or None
    return Resolution(pins, torch_index=torch_index), sizes
