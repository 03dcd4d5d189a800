"""Should the layers ship .pyc files? Measure image size against cold import time.

Builds one sample app twice with our buildpack, with BP_ML_COMPILE_BYTECODE=true and
=false, then for each image: its size, the size of its torch layer, and the time a
fresh container takes to ``import torch`` (and to import the whole app module), with
the container's filesystem read-only as on many platforms, so nothing can be cached
between starts. Prints a Markdown table; writes benchmarks/results/bytecode.json.

    . platform/env.sh && .venv-dev/bin/python benchmarks/bytecode.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "samples" / "fastapi-embeddings"
IMPORTS = {
    "import torch": "import torch",
    "import the app": "import main",
}


def run(args: list[str], **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def build(image: str, bytecode: bool) -> None:
    args = [
        "pack",
        "build",
        image,
        "--path",
        str(APP),
        "--buildpack",
        str(ROOT),
        *os.environ["MLBP_PACK_BUILD_ARGS"].split(),
        "--env",
        f"BP_ML_TORCH_INDEX_URL={os.environ['MLBP_CPU_INDEX_URL']}",
        "--env",
        f"BP_ML_COMPILE_BYTECODE={str(bytecode).lower()}",
        "--clear-cache",
    ]
    run(args)


def layer_size(image: str, layer: str) -> int:
    label = run(
        [
            "docker",
            "inspect",
            "--format",
            '{{index .Config.Labels "io.buildpacks.lifecycle.metadata"}}',
            image,
        ]
    )
    for buildpack in json.loads(label)["buildpacks"]:
        if buildpack["key"] == "mlstack/python-ml":
            return int(buildpack["layers"][layer]["data"]["size"])
    return -1


def cold_import_seconds(image: str, statement: str) -> float:
    code = (
        "import time; t = time.perf_counter(); "
        + statement
        + "; print(time.perf_counter() - t)"
    )
    out = run(
        [
            "docker",
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--entrypoint",
            "/cnb/lifecycle/launcher",
            image,
            "--",
            "python",
            "-c",
            code,
        ]
    )
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    rows = []
    for bytecode in (True, False):
        image = f"mlbp-bench/bytecode-{'on' if bytecode else 'off'}"
        build(image, bytecode)
        size = int(run(["docker", "image", "inspect", "--format", "{{.Size}}", image]))
        row = {
            "bytecode": bytecode,
            "image_bytes": size,
            "torch_layer_bytes": layer_size(image, "torch"),
        }
        for label, statement in IMPORTS.items():
            times = [cold_import_seconds(image, statement) for _ in range(options.runs)]
            row[label] = {"median_s": statistics.median(times), "runs": times}
        rows.append(row)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bytecode.json").write_text(json.dumps(rows, indent=2))
    print(
        "| .pyc in layers | image | torch layer | cold `import torch` "
        "| cold app import |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {'yes' if row['bytecode'] else 'no'} "
            f"| {row['image_bytes'] / 1e9:.2f} GB "
            f"| {row['torch_layer_bytes'] / 1e6:.0f} MB "
            f"| {row['import torch']['median_s']:.2f} s "
            f"| {row['import the app']['median_s']:.2f} s |"
        )


if __name__ == "__main__":
    main()
