"""Compare resolvers on the sample apps' requirements: uv, pip-tools, pip --dry-run.

Each resolver runs with a fresh, empty cache (a cold build) and then again with that
cache filled (a warm one), for the same requirements and the same Python. Writes a
Markdown table to stdout and JSON to benchmarks/results/resolvers.json.

    .venv-dev/bin/python benchmarks/resolvers.py [--runs 3]

pip-tools and pip resolve for PyPI only: neither can send torch to another index for
torch alone, so the comparison uses PyPI for all three (torch's CUDA metadata
included, which is metadata only: no wheel is downloaded by any of them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"uv": "uv==0.13.9", "pip-tools": "pip-tools==7.7.0", "pip": "pip==26.3"}
APPS = {
    "fastapi-embeddings": ROOT / "samples/fastapi-embeddings/requirements.txt",
    "torch==2.13.0 + flask==3.1.3": None,
}


def tools_venv(base: Path) -> Path:
    venv = base / "tools"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", *TOOLS.values()], check=True
    )
    return venv


def command(tool: str, venv: Path, requirements: Path, cache: Path, out: Path):
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    if tool == "uv":
        return [
            str(venv / "bin/uv"),
            "pip",
            "compile",
            str(requirements),
            "--python",
            python,
            "--cache-dir",
            str(cache),
            "--quiet",
            "-o",
            str(out),
        ]
    if tool == "pip-tools":
        return [
            str(venv / "bin/pip-compile"),
            "--quiet",
            "--cache-dir",
            str(cache),
            "--output-file",
            str(out),
            str(requirements),
        ]
    return [
        str(venv / "bin/pip"),
        "install",
        "--dry-run",
        "--quiet",
        "--ignore-installed",
        "--cache-dir",
        str(cache),
        "--report",
        str(out),
        "-r",
        str(requirements),
    ]


def timed(args: list) -> tuple:
    """(seconds, None) for a run; (None, last error line) when it fails twice."""
    env = {**os.environ, "PIP_FIND_LINKS": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    error = ""
    for _attempt in (1, 2):
        started = time.monotonic()
        done = subprocess.run(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if done.returncode == 0:
            return time.monotonic() - started, None
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        telling = [
            line
            for line in lines
            if line.startswith(("RuntimeError:", "ERROR:", "error:"))
        ]
        error = (telling or lines or [f"exit status {done.returncode}"])[-1]
    return None, error


def _median(values: list):
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="mlbp-resolvers-") as tmp:
        base = Path(tmp)
        venv = tools_venv(base)
        torch_only = base / "torch-only.txt"
        torch_only.write_text("torch==2.13.0\nflask==3.1.3\n")
        apps = {name: path or torch_only for name, path in APPS.items()}
        for app, requirements in apps.items():
            for tool in TOOLS:
                cold, warm, errors = [], [], []
                for run in range(options.runs):
                    cache = base / f"cache-{tool}-{run}"
                    out = base / f"out-{tool}-{run}"
                    args = command(tool, venv, requirements, cache, out)
                    seconds, error = timed(args)
                    cold.append(seconds)
                    if error is None:
                        warm.append(timed(args)[0])
                    else:
                        errors.append(error)
                results.append(
                    {
                        "app": app,
                        "tool": TOOLS[tool],
                        "cold_s": _median(cold),
                        "warm_s": _median(warm),
                        "runs": options.runs,
                        "error": errors[0] if errors else None,
                    }
                )
    out_dir = ROOT / "benchmarks/results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "resolvers.json").write_text(json.dumps(results, indent=2))
    print("| requirements | resolver | cold (median) | warm (median) |")
    print("| --- | --- | ---: | ---: |")
    for row in results:
        if row["cold_s"] is None:
            print(f"| {row['app']} | {row['tool']} | failed: {row['error']} | |")
            continue
        print(
            f"| {row['app']} | {row['tool']} | {row['cold_s']:.1f} s | "
            f"{row['warm_s']:.1f} s |"
        )


if __name__ == "__main__":
    main()
