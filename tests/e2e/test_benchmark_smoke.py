"""benchmarks/run --quick on the small sample: it runs end to end and reports.

A smoke test of the benchmark itself, not of speed: it asserts that the table, the
JSON and the plot are written and that every figure is there and positive, never
what the figures are.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from support.packcli import REPO_ROOT

APP = "samples/flask-sklearn-pyproject"
# Figures every build has, in both scenarios.
BUILD_FIGURES = ("build_seconds", "pushed_bytes", "registry_image_bytes")
# Figures of a build that exported to the daemon (the warm scenario).
WARM_FIGURES = (
    "image_bytes",
    "dependency_bytes",
    "dependency_disk_bytes",
    "push_seconds",
)


def test_quick_benchmark_writes_table_json_and_plot(
    platform_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [str(REPO_ROOT / "benchmarks/run"), "--app", APP, "--quick", "--out", str(out)],
        env={**os.environ, **platform_env, "MLBP_BENCH_SKIP_SETUP": "1"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    table = (out / "results.md").read_text()
    assert "| cold build |" in table
    assert "| rebuild after an app-code change |" in table
    assert "n/a" not in table, table
    layer_rows = {
        line.split(" | ")[0]: line
        for line in table.splitlines()
        if " | run image " in line
    }
    assert "zz-deps" in layer_rows["| ours (pack + buildpack)"], table
    assert "pip:scikit-learn" in layer_rows["| Dockerfile recipe"], table
    assert (out / "layers.png").stat().st_size > 10_000

    data = json.loads((out / "results.json").read_text())
    assert data["floor"]["total_bytes"] > data["floor"]["run_image_bytes"] > 0
    assert set(data["contenders"]) == {"ours", "recipe"}
    for key, contender in data["contenders"].items():
        assert contender["ttfr_seconds"] > 0, key
        assert list(contender["warm"]) == ["cold", "code", "dep"], key
        assert list(contender["fresh"]) == ["cold", "code"], key
        for step, result in contender["warm"].items():
            for figure in BUILD_FIGURES + WARM_FIGURES:
                assert result[figure] > 0, (key, step, figure, result[figure])
            # A rebuild that only adds a 10 kB layer can leave the disk sampler at
            # 0, and a build may leave nothing behind: both are figures, not errors.
            assert result["peak_disk_bytes"] >= 0, (key, step)
            assert result["left_behind_bytes"] >= 0, (key, step)
            assert all(layer["size"] >= 0 for layer in result["layers"])
            assert 0 < result["new_layers"] <= result["layers_above_base"]
        for step, result in contender["fresh"].items():
            for figure in BUILD_FIGURES:
                assert result[figure] > 0, (key, step, figure, result[figure])
    for key, contender in data["contenders"].items():
        assert contender["warm"]["cold"]["peak_disk_bytes"] > 0, key
    assert data["contenders"]["ours"]["warm"]["code"]["export_seconds"] > 0
    assert {target["target"] for target in data["targets"]} >= {
        "dep_speedup",
        "code_warm",
        "code_fresh_speedup",
        "image_size",
        "peak_disk",
    }
