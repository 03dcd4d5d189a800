"""The benchmark run: the floor, then each contender through each scenario.

Scenarios:

- ``warm``: a developer's machine exporting to the Docker daemon. Each contender
  starts from nothing of its own (no image, no cache, no volumes), builds the app
  cold, then rebuilds it after each change; after every build the image is pushed to
  a loopback registry of the contender's own, so pushed bytes are counted per push.
- ``fresh``: CI runners that have the builder and run image but none of the
  contender's local state; what one build leaves for the next is in a registry of
  the contender's own. The scenario builds cold, then after each change, removing
  the contender's images, volumes and BuildKit cache before every build. Ours builds
  with ``pack build --publish --cache-image`` (the previous image and the cache image
  are in the registry), the Dockerfiles with ``docker build --cache-from`` the
  previous image and then ``docker push``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from . import docker as d
from .apps import SMALL_DEPENDENCY, AppCopy
from .contenders import BASE_IMAGE, BuildRun, Contender, Fresh, push
from .measure import DiskSampler, run_timed, time_to_first_request, tree_bytes
from .registry import Registry
from .torch_index import BUMP_FROM, BUMP_TO

STEPS = ("cold", "code", "dep", "torch")
STEP_TITLES = {
    "cold": "cold build",
    "code": "rebuild after an app-code change",
    "dep": f"rebuild after adding one small dependency ({SMALL_DEPENDENCY})",
    "torch": f"rebuild after a torch bump ({BUMP_FROM} -> {BUMP_TO})",
}


def torch_version(local_version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: what an app pins; the CPU index adds ``+cpu``."""
    return local_version.split("+", 1)[0]


@dataclass
class LayerFacts:
    name: str
    size: int
    new: bool


@dataclass
class StepResult:
    """Every figure of one build of one contender in one scenario."""

    step: str
    build_seconds: float
    export_seconds: float | None
    phases: dict[str, float]
    push_seconds: float | None
    pushed_bytes: int
    registry_image_bytes: int
    peak_disk_bytes: int
    # The highest sample before the image export began: what the build itself
    # needed, apart from writing the image into the daemon or registry.
    peak_disk_before_export_bytes: int | None
    new_layers: int
    layers_above_base: int
    image_bytes: int | None = None
    dependency_bytes: int | None = None
    dependency_disk_bytes: int | None = None
    new_layer_bytes: int | None = None
    left_behind_bytes: int | None = None
    left_behind: dict[str, int] = field(default_factory=dict)
    layers: list[LayerFacts] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return self.build_seconds + (self.push_seconds or 0.0)


@dataclass
class Floor:
    """The run image plus the app's packages installed in a plain venv."""

    run_image_bytes: int
    packages_bytes: int
    pip_version: str
    packages: dict[str, str]

    @property
    def total_bytes(self) -> int:
        return self.run_image_bytes + self.packages_bytes


@dataclass
class Context:
    app_source: Path
    work: Path
    logs: Path
    torch_index_url: str
    steps: tuple[str, ...]
    fresh_steps: tuple[str, ...]
    ttfr_runs: int
    say: Callable[[str], None]
    torch_pin: str | None = None


FLOOR_SCRIPT = """\
set -e
python3 -m venv /tmp/floor
before=$(du -sb /tmp/floor | cut -f1)
/tmp/floor/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
  --extra-index-url "$TORCH_INDEX_URL" -r /in/requirements.txt -c /in/constraints.txt
after=$(du -sb /tmp/floor | cut -f1)
echo "floor-bytes $((after - before))"
/tmp/floor/bin/pip --version
/tmp/floor/bin/pip freeze > /in/freeze.txt
"""


def measure_floor(app: AppCopy, ctx: Context) -> Floor:
    """Install the app's packages into a plain venv on the run image, with pip.

    torch is constrained to the CPU build the other contenders install, and comes
    from the benchmark's CPU index; the venv's size before the install is taken off.
    """
    directory = ctx.work / "floor"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "requirements.txt").write_text(app.requirements_txt())
    (directory / "constraints.txt").write_text(f"torch=={torch_version(BUMP_FROM)}\n")
    timed = run_timed(
        [
            "docker", "run", "--rm", "--network", "host", "--user", "0",
            "--volume", f"{directory}:/in",
            "--env", f"TORCH_INDEX_URL={ctx.torch_index_url}",
            BASE_IMAGE, "bash", "-c", FLOOR_SCRIPT,
        ],
        ctx.logs / "floor.log",
    )  # fmt: skip
    packages_bytes = 0
    pip_version = "?"
    for line in timed.lines:
        if line.startswith("floor-bytes "):
            packages_bytes = int(line.split()[1])
        elif line.startswith("pip "):
            pip_version = line.split()[1]
    packages = {}
    for line in (directory / "freeze.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            packages[name.lower()] = version
    return Floor(sum(d.layer_sizes(BASE_IMAGE)), packages_bytes, pip_version, packages)


def apply_change(app: AppCopy, step: str, torch_pin: str | None) -> None:
    if step == "code":
        app.change_code()
    elif step == "dep":
        app.add_dependency()
    elif step == "torch" and torch_pin:
        app.pin_torch(torch_version(BUMP_TO))


def new_app_copy(ctx: Context, directory: Path) -> AppCopy:
    app = AppCopy.make(ctx.app_source, directory)
    if ctx.torch_pin:
        app.pin_torch(ctx.torch_pin)
    return app


def seed_registry(registry: Registry, log: Path) -> str:
    """Push the run image, as a CI runner's registry holds its base image."""
    remote = f"{registry.host}/{BASE_IMAGE}"
    d.docker("tag", BASE_IMAGE, remote)
    push(remote, log)
    return remote


def wipe_local_state(contender: Contender, image_ids: set[str]) -> None:
    """Remove the contender's images, volumes and the BuildKit cache."""
    listing = d.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
    tagged = [
        ref
        for ref in listing.split()
        if ref.split(":")[-2].endswith("/" + contender.repository())
    ]
    d.remove_images(*tagged, *sorted(image_ids))
    d.remove_volumes(*contender.volumes())
    command, env = d.buildkit_client()
    subprocess.run(
        [command[0], "builder", "prune", "--all", "--force"],
        env=env,
        capture_output=True,
        check=False,
    )


def left_behind(
    contender: Contender, image_ids: set[str], current: str
) -> dict[str, int]:
    """What the contender's builds keep on disk besides its current image.

    Previous images count by the layers no current image uses (two old images share
    most layers with each other, so the daemon's per-image unique size says ~0).
    """
    usage = d.api_get("/system/df")
    assert isinstance(usage, dict)
    volumes = sum(
        max(0, volume.get("UsageData", {}).get("Size", 0))
        for volume in usage.get("Volumes") or []
        if volume["Name"] in contender.volumes()
    )
    in_use = set(d.chain_ids(d.diff_ids(current)))
    in_use |= set(d.chain_ids(d.diff_ids(BASE_IMAGE)))
    old_layers: set[str] = set()
    for old in image_ids - {current}:
        if d.image_id(old) is not None:
            old_layers |= set(d.chain_ids(d.diff_ids(old))) - in_use
    build_cache = sum(
        entry.get("Size", 0)
        for entry in usage.get("BuildCache") or []
        if not entry.get("Shared")
    )
    return {
        "cache volumes": volumes,
        "previous images": sum(d.chain_size(chain) for chain in old_layers),
        "BuildKit cache": build_cache,
    }


def layer_facts(
    contender: Contender, image: str, app: AppCopy, previous: set[str]
) -> tuple[list[LayerFacts], list[int]]:
    names = contender.layer_names(image, app)
    sizes = d.layer_sizes(image)
    diffs = d.diff_ids(image)
    facts = [
        LayerFacts(name, size, diff not in previous and name != "run image")
        for name, size, diff in zip(names, sizes, diffs)
    ]
    dependency_indexes = [
        i for i, name in enumerate(names) if contender.is_dependency_layer(name)
    ]
    return facts, dependency_indexes


def export_start(run: BuildRun) -> float | None:
    """Seconds from the build's start to its image export, when the log tells."""
    if run.export_seconds is None:
        return None
    return run.seconds - run.export_seconds


def new_blob_bytes(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(size for digest, size in after.items() if digest not in before)


def run_warm(
    contender: Contender, ctx: Context
) -> tuple[dict[str, StepResult], float | None]:
    """The warm scenario; returns its results and the time to first request of the
    cold build's image."""
    base = ctx.work / contender.key / "warm"
    app = new_app_copy(ctx, base / "app")
    registry = Registry(base / "registry", ctx.logs / f"{contender.key}-registry.log")
    registry.start()
    results: dict[str, StepResult] = {}
    image_ids: set[str] = set()
    ttfr = None
    try:
        seed_registry(registry, ctx.logs / f"{contender.key}-push.log")
        image = f"{registry.host}/{contender.repository()}:latest"
        wipe_local_state(contender, image_ids)
        previous: set[str] = set()
        for step in ctx.steps:
            apply_change(app, step, ctx.torch_pin)
            ctx.say(f"{contender.key} warm {step}: building")
            log = ctx.logs / f"{contender.key}-warm-{step}.log"
            with DiskSampler(exclude=partial(tree_bytes, registry.storage)) as disk:
                run = contender.build(app, image, base, log, fresh=None)
            disk.write_csv(log.with_suffix(".disk.csv"))
            current = d.image_id(image)
            assert current is not None
            image_ids.add(current)
            layers, dependency_indexes = layer_facts(contender, image, app, previous)
            behind = left_behind(contender, image_ids, current)

            before = registry.blobs()
            push_seconds = push(image, ctx.logs / f"{contender.key}-push.log")
            pushed = new_blob_bytes(before, registry.blobs())
            results[step] = StepResult(
                step=step,
                build_seconds=round(run.seconds, 2),
                export_seconds=run.export_seconds,
                phases=run.phases,
                push_seconds=round(push_seconds, 2),
                pushed_bytes=pushed,
                registry_image_bytes=registry.image_bytes(contender.repository()),
                peak_disk_bytes=disk.peak_growth,
                peak_disk_before_export_bytes=disk.peak_before(export_start(run)),
                new_layers=sum(layer.new for layer in layers),
                layers_above_base=sum(layer.name != "run image" for layer in layers),
                image_bytes=sum(layer.size for layer in layers),
                dependency_bytes=sum(layers[i].size for i in dependency_indexes),
                dependency_disk_bytes=d.layers_disk_usage(image, dependency_indexes),
                new_layer_bytes=sum(layer.size for layer in layers if layer.new),
                left_behind_bytes=sum(behind.values()),
                left_behind=behind,
                layers=layers,
            )
            ctx.say(f"{contender.key} warm {step}: {summary(results[step])}")
            previous = set(d.diff_ids(image))
            if step == "cold" and ctx.ttfr_runs:
                times = [time_to_first_request(image) for _ in range(ctx.ttfr_runs)]
                ttfr = round(statistics.median(times), 2)
                ctx.say(f"{contender.key}: first request answered after {ttfr} s")
    finally:
        registry.stop()
        wipe_local_state(contender, image_ids)
    return results, ttfr


def run_fresh(contender: Contender, ctx: Context) -> dict[str, StepResult]:
    """The fresh scenario: every build on a runner with none of the contender's
    local state, the previous build's image (and ours' cache image) in a registry."""
    base = ctx.work / contender.key / "fresh"
    app = new_app_copy(ctx, base / "app")
    registry = Registry(
        base / "registry", ctx.logs / f"{contender.key}-fresh-registry.log"
    )
    registry.start()
    results: dict[str, StepResult] = {}
    image_ids: set[str] = set()
    try:
        fresh = Fresh(
            registry.host,
            seed_registry(registry, ctx.logs / f"{contender.key}-fresh-push.log"),
            f"{registry.host}/{contender.repository()}-cache:latest",
        )
        image = f"{registry.host}/{contender.repository()}:latest"
        base_manifest = registry.manifest(*BASE_IMAGE.split(":"))
        for step in ctx.steps:
            apply_change(app, step, ctx.torch_pin)
            if step not in ctx.fresh_steps:
                continue
            previous_manifest = (
                registry.manifest(contender.repository()) if results else None
            )
            fresh.has_previous = previous_manifest is not None
            wipe_local_state(contender, image_ids)
            ctx.say(f"{contender.key} fresh {step}: building")
            log = ctx.logs / f"{contender.key}-fresh-{step}.log"
            before = registry.blobs()
            with DiskSampler(exclude=partial(tree_bytes, registry.storage)) as disk:
                run: BuildRun = contender.build(app, image, base, log, fresh=fresh)
            disk.write_csv(log.with_suffix(".disk.csv"))
            push_seconds = None
            if d.image_id(image) is not None:
                image_ids.add(d.image_id(image) or "")
                push_seconds = round(push(image, log), 2)
            manifest = registry.manifest(contender.repository())
            # A cold build has no previous image: only the run image's layers are old.
            old_digests = {
                layer["digest"]
                for layer in (previous_manifest or base_manifest)["layers"]
            }
            results[step] = StepResult(
                step=step,
                build_seconds=round(run.seconds, 2),
                export_seconds=run.export_seconds,
                phases=run.phases,
                push_seconds=push_seconds,
                pushed_bytes=new_blob_bytes(before, registry.blobs()),
                registry_image_bytes=registry.image_bytes(contender.repository()),
                peak_disk_bytes=disk.peak_growth,
                peak_disk_before_export_bytes=disk.peak_before(export_start(run)),
                new_layers=sum(
                    layer["digest"] not in old_digests for layer in manifest["layers"]
                ),
                layers_above_base=len(manifest["layers"]) - len(d.diff_ids(BASE_IMAGE)),
            )
            ctx.say(f"{contender.key} fresh {step}: {summary(results[step])}")
    finally:
        registry.stop()
        wipe_local_state(contender, image_ids)
    return results


def summary(result: StepResult) -> str:
    parts = [f"{result.build_seconds:.1f} s"]
    if result.push_seconds is not None:
        parts.append(f"push {result.push_seconds:.1f} s")
    if result.image_bytes:
        parts.append(f"image {result.image_bytes / 1e9:.2f} GB")
    parts.append(f"{result.new_layers}/{result.layers_above_base} layers new")
    parts.append(f"pushed {result.pushed_bytes / 1e6:.1f} MB")
    parts.append(f"peak disk {result.peak_disk_bytes / 1e9:.2f} GB")
    return ", ".join(parts)


def to_json(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return to_json(asdict(value))  # type: ignore[call-overload]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(to_json(data), indent=2) + "\n")


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
