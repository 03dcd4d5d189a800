"""The contenders: how each builds an image and how its layers are named.

- ``ours``: ``pack build`` with this buildpack on the local builder.
- ``recipe``: the chunked Dockerfile users write by hand: CPU torch first, then each
  heavy package in its own ``RUN pip install --no-cache-dir`` with the caches purged,
  then the rest, then the app.
- ``naive-cpu`` / ``naive-cuda``: one ``pip install -r requirements.txt`` with pip's
  default settings into one layer; torch from the CPU index, or PyPI's CUDA build.

The Dockerfile contenders are built with BuildKit (what ``docker build`` uses today)
and keep BuildKit's inline cache in the image, so a fresh runner can build with
``--cache-from`` the previous image in the registry.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .apps import AppCopy
from .docker import docker, image_config
from .measure import run_timed

BUILDPACK_ID = "mlstack/python-ml"
BASE_IMAGE = "mlbp/run:bookworm"
PACK_PHASES = ("ANALYZING", "DETECTING", "RESTORING", "BUILDING", "EXPORTING")
PURGE = "rm -rf /root/.cache /tmp/*"
# What the buildpack is made of; a copy of just these is what pack packs.
BUILDPACK_FILES = ("bin", "lib", "buildpack.toml")

# The heavy packages a recipe author installs on their own, in install order; torch's
# own dependencies (sympy, mpmath) come with the torch step.
RECIPE_HEAVY_ORDER = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "polars",
    "scikit-learn",
    "scikit-image",
    "llvmlite",
    "numba",
    "opencv-python-headless",
    "opencv-python",
    "onnxruntime",
    "xgboost",
    "lightgbm",
    "catboost",
    "faiss-cpu",
    "tokenizers",
    "transformers",
)


@dataclass
class Fresh:
    """A fresh CI runner's settings: the registry that holds the run image, the
    previous build's image (once there is one) and ours' cache image."""

    registry: str
    run_image: str
    cache_image: str
    has_previous: bool = False


@dataclass
class BuildRun:
    """How long a build took, and how long of that was exporting the image."""

    seconds: float
    export_seconds: float | None
    phases: dict[str, float] = field(default_factory=dict)
    push_seconds: float = 0.0


@dataclass
class Settings:
    """What every build needs from the platform."""

    repo_root: Path
    buildpack_dir: Path
    torch_index_url: str
    pack_args: list[str]
    buildkit_command: list[str]
    buildkit_env: dict[str, str]
    env: dict[str, str]
    heavy_packages: list[str] = field(default_factory=list)
    run_id: str = "run"


class Contender:
    key = ""
    title = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def repository(self) -> str:
        """The image name; unique to the run, so two runs never remove each other's
        images or volumes (BuildKit's cache is still shared: run one at a time)."""
        return f"mlbp-bench-{self.settings.run_id}-{self.key}"

    def volumes(self) -> list[str]:
        """Docker volumes this contender's builds keep between builds."""
        return []

    def build(
        self, app: AppCopy, image: str, workdir: Path, log: Path, fresh: Fresh | None
    ) -> BuildRun:
        raise NotImplementedError

    def layer_names(self, image: str, app: AppCopy) -> list[str]:
        raise NotImplementedError

    def is_dependency_layer(self, name: str) -> bool:
        raise NotImplementedError


class Ours(Contender):
    key = "ours"
    title = "ours (pack + buildpack)"

    def volumes(self) -> list[str]:
        # pack names its cache volumes after the image (without the registry host):
        # pack-cache-<name>_<tag>-<hash of the full reference>.build and .launch. In
        # daemon mode the launch cache keeps a copy of every launch layer.
        prefix = f"pack-cache-{self.repository()}_"
        listing = docker("volume", "ls", "--quiet")
        return [name for name in listing.split() if name.startswith(prefix)]

    def build(
        self, app: AppCopy, image: str, workdir: Path, log: Path, fresh: Fresh | None
    ) -> BuildRun:
        args = [
            "pack", "build", image,
            "--path", str(app.directory),
            "--buildpack", str(self.settings.buildpack_dir),
            *self.settings.pack_args,
            "--env", f"BP_ML_TORCH_INDEX_URL={self.settings.torch_index_url}",
        ]  # fmt: skip
        if fresh is not None:
            args += [
                "--publish",
                "--run-image", fresh.run_image,
                "--cache-image", fresh.cache_image,
                "--insecure-registry", fresh.registry,
            ]  # fmt: skip
        marks = [f"===> {phase}" for phase in PACK_PHASES]
        timed = run_timed(args, log, env=self.settings.env, marks=marks)
        starts = sorted((timed.marks[m], m[5:]) for m in marks if m in timed.marks)
        # Before the lifecycle starts, pack makes an ephemeral builder holding the
        # --buildpack directory; that time is pack's, not the buildpack's.
        phases = {"pack setup": round(starts[0][0], 2)} if starts else {}
        for (start, phase), end in zip(
            starts, [s for s, _ in starts[1:]] + [timed.seconds]
        ):
            phases[phase.lower()] = round(end - start, 2)
        return BuildRun(timed.seconds, phases.get("exporting"), phases)

    def layer_names(self, image: str, app: AppCopy) -> list[str]:
        config = image_config(image)
        labels = config["config"]["Labels"]
        metadata = json.loads(labels["io.buildpacks.lifecycle.metadata"])
        names = {}
        for entry in metadata.get("app", []):
            names[entry["sha"]] = "app"
        for key in ("config", "launcher", "process-types", "sbom"):
            if (metadata.get(key) or {}).get("sha"):
                names[metadata[key]["sha"]] = key
        for buildpack in metadata.get("buildpacks", []):
            for layer, layer_metadata in buildpack.get("layers", {}).items():
                ours = buildpack["key"] == BUILDPACK_ID
                names[layer_metadata["sha"]] = layer if ours else buildpack["key"]
        base_layers = len(image_config(BASE_IMAGE)["rootfs"]["diff_ids"])
        diffs = config["rootfs"]["diff_ids"]
        return ["run image"] * base_layers + [
            names.get(diff, "other") for diff in diffs[base_layers:]
        ]

    def is_dependency_layer(self, name: str) -> bool:
        return name not in (
            "run image",
            "app",
            "config",
            "launcher",
            "process-types",
            "sbom",
            "other",
        )


@dataclass
class Step:
    """One Dockerfile instruction and the layer name it makes."""

    name: str
    instruction: str
    match: str = ""


class DockerfileContender(Contender):
    dependency_steps: tuple[str, ...] = ()

    def steps(self, app: AppCopy) -> list[Step]:
        raise NotImplementedError

    def dockerfile(self, app: AppCopy) -> str:
        lines = [f"FROM {BASE_IMAGE}", "USER root"]
        lines += [step.instruction for step in self.steps(app)]
        command = json.dumps(app.start_command())
        lines += ["USER 1002:1000", "ENV PORT=8080", "EXPOSE 8080", f"CMD {command}"]
        return "\n".join(lines) + "\n"

    def build(
        self, app: AppCopy, image: str, workdir: Path, log: Path, fresh: Fresh | None
    ) -> BuildRun:
        context = workdir / "context"
        if context.exists():
            shutil.rmtree(context)
        shutil.copytree(app.directory, context)
        (context / "requirements.txt").write_text(app.requirements_txt())
        dockerfile = workdir / "Dockerfile"
        dockerfile.write_text(self.dockerfile(app))
        args = [
            *self.settings.buildkit_command,
            "--progress", "plain",
            "--network", "host",
            "--build-arg", "BUILDKIT_INLINE_CACHE=1",
            "--build-arg", f"TORCH_INDEX_URL={self.settings.torch_index_url}",
            "--file", str(dockerfile),
            "--tag", image,
        ]  # fmt: skip
        if fresh is not None and fresh.has_previous:
            args += ["--cache-from", image]
        args.append(str(context))
        timed = run_timed(args, log, env=self.settings.buildkit_env)
        return BuildRun(timed.seconds, _buildkit_export_seconds(timed.lines))

    def layer_names(self, image: str, app: AppCopy) -> list[str]:
        config = image_config(image)
        base_layers = len(image_config(BASE_IMAGE)["rootfs"]["diff_ids"])
        entries = [h for h in config.get("history", []) if not h.get("empty_layer")]
        diffs = config["rootfs"]["diff_ids"]
        if len(entries) != len(diffs):
            return ["run image"] * base_layers + ["?"] * (len(diffs) - base_layers)
        steps = self.steps(app)
        names = []
        for index, entry in enumerate(entries):
            if index < base_layers:
                names.append("run image")
                continue
            created_by = entry.get("created_by", "")
            found = [s.name for s in steps if s.match and s.match in created_by]
            names.append(found[0] if found else "other")
        return names

    def is_dependency_layer(self, name: str) -> bool:
        return name in self.dependency_steps or name.startswith("pip:")


def _pip_step(name: str, command: str) -> Step:
    return Step(name, f"RUN {command}", command)


class Recipe(DockerfileContender):
    key = "recipe"
    title = "Dockerfile recipe"
    dependency_steps = ("venv", "torch", "rest")

    def steps(self, app: AppCopy) -> list[Step]:
        pip = "pip install --no-cache-dir"
        steps = [
            _pip_step("venv", "python3 -m venv /opt/venv"),
            Step("env", "ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1"),
            Step("workdir", "WORKDIR /app", "WORKDIR /app"),
            Step(
                "requirements.txt", "COPY requirements.txt ./", "COPY requirements.txt"
            ),
        ]
        if app.torch_pin():
            steps.append(Step("torch-index", "ARG TORCH_INDEX_URL"))
            steps.append(
                _pip_step(
                    "torch",
                    f'{pip} --index-url "$TORCH_INDEX_URL" -c requirements.txt torch'
                    f" && {PURGE}",
                )
            )
        for package in self.settings.heavy_packages:
            steps.append(
                _pip_step(
                    f"pip:{package}", f"{pip} -c requirements.txt {package} && {PURGE}"
                )
            )
        steps.append(_pip_step("rest", f"{pip} -r requirements.txt && {PURGE}"))
        steps.append(Step("app", "COPY . ./", "COPY . ./"))
        return steps


class Naive(DockerfileContender):
    dependency_steps = ("venv", "pip install -r")

    def __init__(self, settings: Settings, cuda: bool) -> None:
        super().__init__(settings)
        self.cuda = cuda
        self.key = "naive-cuda" if cuda else "naive-cpu"
        self.title = "naive, PyPI (CUDA) torch" if cuda else "naive, CPU torch"

    def steps(self, app: AppCopy) -> list[Step]:
        install = "pip install -r requirements.txt"
        steps = [
            _pip_step("venv", "python3 -m venv /opt/venv"),
            Step("env", "ENV PATH=/opt/venv/bin:$PATH"),
            Step("workdir", "WORKDIR /app", "WORKDIR /app"),
            Step(
                "requirements.txt", "COPY requirements.txt ./", "COPY requirements.txt"
            ),
        ]
        if not self.cuda and app.torch_pin():
            steps.append(Step("torch-index", "ARG TORCH_INDEX_URL"))
            install = (
                'pip install --extra-index-url "$TORCH_INDEX_URL" -r requirements.txt'
            )
        steps.append(_pip_step("pip install -r", install))
        steps.append(Step("app", "COPY . ./", "COPY . ./"))
        return steps


def _buildkit_export_seconds(lines: list[str]) -> float | None:
    """The duration BuildKit's plain progress gives its ``exporting to image`` step."""
    step = None
    for line in lines:
        words = line.split()
        if step is None and line.endswith(" exporting to image") and words:
            step = words[0]
        elif step is not None and len(words) == 3 and words[:2] == [step, "DONE"]:
            return float(words[2].rstrip("s"))
    return None


def push(image: str, log: Path) -> float:
    """``docker push`` the image; returns its wall time."""
    return run_timed(["docker", "push", image], log).seconds


def clean_buildpack(repo_root: Path, target: Path) -> Path:
    """A copy of the buildpack's own files, as a user's checkout would give pack.

    ``pack build --buildpack DIR`` puts all of DIR into an ephemeral builder on every
    build; the repository also holds the dev venv, caches and git objects.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in BUILDPACK_FILES:
        source = repo_root / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target
