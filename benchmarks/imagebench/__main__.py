"""Side-by-side image benchmark: ours against the Dockerfile recipe and a naive build.

    benchmarks/run [--app samples/fastapi-embeddings] [--quick]
                   [--scenarios warm,fresh] [--include-naive-cuda]

Writes results.md, results.json and layers.png to benchmarks/results/<timestamp>/
and prints the Markdown. It reports; it never fails on a figure. Run it through
benchmarks/run, which sets up the platform and this benchmark's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import docker as d
from . import report
from .bench import (
    STEPS,
    Context,
    measure_floor,
    now,
    run_fresh,
    run_warm,
    to_json,
    torch_version,
    write_json,
)
from .contenders import (
    RECIPE_HEAVY_ORDER,
    Contender,
    Naive,
    Ours,
    Recipe,
    Settings,
    clean_buildpack,
)
from .torch_index import BUMP_FROM, TorchIndex

REPO_ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--app",
        default="samples/fastapi-embeddings",
        help="the app to build (a directory)",
    )
    parser.add_argument(
        "--scenarios", default="warm,fresh", help="comma-separated: warm, fresh"
    )
    parser.add_argument(
        "--contenders",
        default=None,
        help="comma-separated: ours, recipe, naive-cpu, naive-cuda (default: "
        "ours,recipe,naive-cpu; with --quick, ours,recipe)",
    )
    parser.add_argument(
        "--include-naive-cuda",
        action="store_true",
        help="also build with PyPI's CUDA torch (downloads ~3 GB)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer steps (cold, app-code, one dependency; fresh "
        "runner: cold, app-code) and one time-to-first-request run",
    )
    parser.add_argument(
        "--ttfr-runs",
        type=int,
        default=None,
        help="docker run -> first answer, median of N (default 3)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default benchmarks/results/<time>)",
    )
    parser.add_argument(
        "--buildpack-source",
        choices=("clean", "repo"),
        default="clean",
        help="pack ours from a copy of bin/, lib/ and buildpack.toml (clean, the "
        "default) or from the whole repository with its dev venv (repo)",
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the app copies and registries after the run",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="DIR",
        help="only remake results.md and layers.png from DIR",
    )
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    disk = shutil.disk_usage(d.DATA_ROOT)
    summary = (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GB RAM, "
        f"one {disk.total / 1e9:.0f} GB disk, Linux {platform.release()}"
    )
    return {
        "summary": summary,
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gb": f"{memory_kb / 1024 / 1024:.1f}",
        "disk_gb": f"{disk.total / 1e9:.0f}",
        "kernel": platform.release(),
    }


def versions(logs: Path, pip_version: str) -> dict[str, str]:
    found = {
        "pack": subprocess.run(
            ["pack", "version"], capture_output=True, text=True
        ).stdout.strip(),
        "lifecycle": os.environ.get("MLBP_LIFECYCLE_VERSION", "?"),
        "Docker": d.server_version() + " (BuildKit built in)",
        "pip (recipe, naive)": pip_version,
    }
    for log in sorted(logs.glob("ours-warm-cold.log")):
        for line in log.read_text().splitlines():
            if "uv " in line and any(ch.isdigit() for ch in line):
                words = line.split()
                for index, word in enumerate(words[:-1]):
                    if word == "uv" and words[index + 1][:1].isdigit():
                        found["uv (ours)"] = words[index + 1].rstrip(",)")
                        return found
    return found


def make_contenders(keys: list[str], settings: Settings) -> list[Contender]:
    made: list[Contender] = []
    for key in keys:
        if key == "ours":
            made.append(Ours(settings))
        elif key == "recipe":
            made.append(Recipe(settings))
        elif key in ("naive-cpu", "naive-cuda"):
            made.append(Naive(settings, cuda=key == "naive-cuda"))
        else:
            raise SystemExit(f"unknown contender: {key}")
    return made


def backfill_peak_before_export(data: dict, logs: Path) -> None:
    """Add the peak before the export to results written before it was measured,
    from each build's disk samples and the export time in the JSON."""
    for key, contender in data["contenders"].items():
        for scenario in ("warm", "fresh"):
            for step, result in contender.get(scenario, {}).items():
                samples = logs / f"{key}-{scenario}-{step}.disk.csv"
                if "peak_disk_before_export_bytes" in result or not samples.exists():
                    continue
                export = result.get("export_seconds")
                if export is None:
                    result["peak_disk_before_export_bytes"] = None
                    continue
                start = result["build_seconds"] - export
                rows = samples.read_text().splitlines()[1:]
                growth = [
                    int(used)
                    for t, used in (row.split(",") for row in rows)
                    if float(t) < start
                ]
                result["peak_disk_before_export_bytes"] = max(growth, default=0)


def write_report(directory: Path, data: dict) -> str:
    data["targets"] = report.targets(data)
    text = report.markdown(data)
    (directory / "results.md").write_text(text)
    write_json(directory / "results.json", data)
    report.plot(data, directory / "layers.png")
    return text


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    if options.report:
        data = json.loads((options.report / "results.json").read_text())
        backfill_peak_before_export(data, options.report / "logs")
        print(write_report(options.report, data))
        return 0

    for name in ("MLBP_CPU_INDEX_URL", "MLBP_PACK_BUILD_ARGS", "MLBP_CACHE"):
        if name not in os.environ:
            raise SystemExit(f"{name} is not set: run through benchmarks/run")
    if d.image_id(os.environ["MLBP_BUILDER"]) is None:
        raise SystemExit(f"no {os.environ['MLBP_BUILDER']}: run platform/setup first")

    app_source = (REPO_ROOT / options.app).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = options.out or REPO_ROOT / "benchmarks/results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    cache = Path(os.environ["MLBP_CACHE"]) / "benchmarks"
    work = cache / f"work-{stamp}"
    work.mkdir(parents=True, exist_ok=True)

    default = "ours,recipe" if options.quick else "ours,recipe,naive-cpu"
    keys = [k for k in (options.contenders or default).split(",") if k]
    if options.include_naive_cuda and "naive-cuda" not in keys:
        keys.append("naive-cuda")
    scenarios = [s for s in options.scenarios.split(",") if s]

    index = TorchIndex(
        cache,
        os.environ["MLBP_CPU_INDEX_URL"],
        REPO_ROOT / ".venv-dev",
        logs / "torch-index.log",
    )
    say("preparing the benchmark's CPU torch index (stand-in + bumped torch)")
    index.prepare()
    index.start()
    try:
        ctx = Context(
            app_source=app_source,
            work=work,
            logs=logs,
            torch_index_url=index.url,
            steps=("cold", "code", "dep") if options.quick else STEPS,
            fresh_steps=(
                (("cold", "code") if options.quick else STEPS)
                if "fresh" in scenarios
                else ()
            ),
            ttfr_runs=options.ttfr_runs or (1 if options.quick else 3),
            say=say,
        )
        from .apps import AppCopy

        say(f"floor: installing {app_source.name}'s packages into a plain venv")
        floor = measure_floor(AppCopy.make(app_source, work / "floor-app"), ctx)
        say(
            f"floor: {floor.total_bytes / 1e9:.2f} GB "
            f"({len(floor.packages)} packages, {floor.packages_bytes / 1e9:.2f} GB)"
        )
        if "torch" in floor.packages:
            ctx.torch_pin = torch_version(BUMP_FROM)
        else:
            ctx.steps = tuple(s for s in ctx.steps if s != "torch")
            ctx.fresh_steps = tuple(s for s in ctx.fresh_steps if s != "torch")

        command, env = d.buildkit_client()
        buildpack_dir = (
            REPO_ROOT
            if options.buildpack_source == "repo"
            else clean_buildpack(REPO_ROOT, work / "buildpack")
        )
        settings = Settings(
            repo_root=REPO_ROOT,
            buildpack_dir=buildpack_dir,
            torch_index_url=index.url,
            pack_args=os.environ["MLBP_PACK_BUILD_ARGS"].split(),
            buildkit_command=command,
            buildkit_env=env,
            env=dict(os.environ),
            heavy_packages=[p for p in RECIPE_HEAVY_ORDER if p in floor.packages],
            run_id=stamp.replace("-", ""),
        )
        contenders = make_contenders(keys, settings)
        data: dict = {
            "app": options.app,
            "date": now(),
            "quick": options.quick,
            "scenarios": scenarios,
            "steps": list(ctx.steps),
            "fresh_steps": list(ctx.fresh_steps),
            "machine": machine(),
            "versions": {},
            "floor": {**to_json(floor), "total_bytes": floor.total_bytes},  # type: ignore[dict-item]
            "recipe_heavy_packages": settings.heavy_packages,
            "buildpack_source": options.buildpack_source,
            "contenders": {},
        }
        for contender in contenders:
            entry: dict = {"title": contender.title}
            data["contenders"][contender.key] = entry
            if contender.key == "naive-cuda":
                ctx_steps = ctx.steps
                # PyPI has no torch 2.13.1; the bumped torch lives on the CPU index.
                ctx.steps = tuple(s for s in ctx.steps if s != "torch")
            results, ttfr = run_warm(contender, ctx)
            entry["warm"] = to_json(results)
            entry["ttfr_seconds"] = ttfr
            if ctx.fresh_steps:
                entry["fresh"] = to_json(run_fresh(contender, ctx))
            if contender.key == "naive-cuda":
                ctx.steps = ctx_steps
            write_json(out / "results.json", data)
        data["versions"] = versions(logs, floor.pip_version)
        text = write_report(out, data)
        print(text)
        say(f"results in {out}")
    finally:
        index.stop()
        for reference in d.docker(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"
        ).split():
            if reference.startswith("127.0.0.1:") and "/mlbp/run:" in reference:
                d.remove_images(reference)
        if not options.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
