"""The Markdown table, the targets check and the layer plot, from the run's JSON.

Every function here reads the JSON-shaped dict ``bench`` writes, so a report can be
made again from ``results.json`` alone (``python -m imagebench --report DIR``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

REFERENCE = "recipe"
GB = 1e9
MB = 1e6

# What the issue asks of ours, checked against the figures of the same run.
TARGET_TEXT = {
    "dep_speedup": "rebuild after one small dependency >= 10x faster than the recipe's",
    "dep_push_share": "push after that rebuild moves < 5% of the image's bytes",
    "dep_fresh_speedup": "...on the fresh runner (build + push) >= 10x faster",
    "dep_fresh_push_share": "...moving < 5% of the image's bytes",
    "code_warm": "app-code rebuild on the warm machine < 20 s through pack",
    "code_fresh_speedup": "app-code rebuild on the fresh runner >= 5x faster than "
    "the recipe's",
    "code_fresh_push_share": "...moving < 5% of the image's bytes",
    "image_size": "image no larger than the recipe's",
    "peak_disk": "peak build disk <= 1.3x the final dependency layers",
    "peak_disk_build": "...counting only the build, before pack's image export",
}


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def _gb(value: float | None) -> str:
    if value is not None and value < 10 * MB:
        return _mb(value)
    return "n/a" if value is None else f"{value / GB:.2f} GB"


def _mb(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < MB:
        return f"{value / 1e3:.0f} kB"
    return f"{value / MB:.1f} MB" if value < 100 * MB else f"{value / MB:.0f} MB"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return ""
    ratio = value / reference
    shown = f"{ratio:.2f}" if ratio < 10 else f"{ratio:.0f}"
    return f" ({shown}×)"


def _step(contender: dict, scenario: str, step: str) -> dict | None:
    return contender.get(scenario, {}).get(step)


Getter = Callable[[dict], "float | None"]


def _row(
    data: dict,
    title: str,
    get: Getter,
    fmt: Callable[[float | None], str],
    ratio: bool = True,
    extra: Callable[[dict], str] | None = None,
    min_reference: float = 0,
) -> str | None:
    contenders = data["contenders"]
    values = {key: get(contender) for key, contender in contenders.items()}
    if all(value is None for value in values.values()):
        return None
    reference = values.get(REFERENCE)
    cells = []
    for key, value in values.items():
        cell = fmt(value)
        if ratio and key != REFERENCE and (reference or 0) > min_reference:
            cell += _ratio(value, reference)
        if extra is not None and value is not None:
            cell += extra(contenders[key])
        cells.append(cell)
    return f"| {title} | " + " | ".join(cells) + " |"


def _field(scenario: str, step: str, name: str) -> Getter:
    def get(contender: dict) -> float | None:
        found = _step(contender, scenario, step)
        return None if found is None else found.get(name)

    return get


def _total(scenario: str, step: str) -> Getter:
    def get(contender: dict) -> float | None:
        found = _step(contender, scenario, step)
        if found is None:
            return None
        return found["build_seconds"] + (found.get("push_seconds") or 0)

    return get


def _share(scenario: str, step: str) -> Callable[[dict], str]:
    def extra(contender: dict) -> str:
        found = _step(contender, scenario, step)
        if not found or not found.get("registry_image_bytes"):
            return ""
        share = 100 * found["pushed_bytes"] / found["registry_image_bytes"]
        return f", {share:.1f}% of image"

    return extra


def _layers_new(scenario: str, step: str) -> Callable[[dict], str]:
    def extra(contender: dict) -> str:
        found = _step(contender, scenario, step)
        if not found:
            return ""
        return f"; {found['new_layers']}/{found['layers_above_base']} layers new"

    return extra


def _export(scenario: str, step: str) -> Callable[[dict], str]:
    def extra(contender: dict) -> str:
        found = _step(contender, scenario, step)
        if not found:
            return ""
        parts = []
        if found.get("push_seconds") and scenario == "fresh":
            parts.append(f"push {_seconds(found['push_seconds'])}")
        if found.get("export_seconds") is not None:
            parts.append(f"export {_seconds(found['export_seconds'])}")
        setup = (found.get("phases") or {}).get("pack setup")
        if setup is not None:
            parts.append(f"pack setup {_seconds(setup)}")
        return "; " + ", ".join(parts) if parts else ""

    return extra


def _peak_over_deps(name: str) -> Callable[[dict], str]:
    def extra(contender: dict) -> str:
        cold = _step(contender, "warm", "cold")
        if not cold or not cold.get("dependency_disk_bytes") or cold.get(name) is None:
            return ""
        return f"; {cold[name] / cold['dependency_disk_bytes']:.2f}× dep. layers"

    return extra


def _max_rebuild_peak(contender: dict) -> float | None:
    peaks = [
        result["peak_disk_bytes"]
        for step, result in contender.get("warm", {}).items()
        if step != "cold"
    ]
    return max(peaks) if peaks else None


def _last_left_behind(contender: dict) -> float | None:
    results = list(contender.get("warm", {}).values())
    return results[-1].get("left_behind_bytes") if results else None


def _image_over_floor(data: dict) -> Getter:
    def get(contender: dict) -> float | None:
        cold = _step(contender, "warm", "cold")
        if not cold or not cold.get("image_bytes"):
            return None
        return cold["image_bytes"] / data["floor"]["total_bytes"]

    return get


def warm_table(data: dict) -> list[str]:
    steps = data["steps"]
    header = ["figure", *(c["title"] for c in data["contenders"].values())]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    rows = [
        _row(
            data,
            "cold build",
            _field("warm", "cold", "build_seconds"),
            _seconds,
            extra=_export("warm", "cold"),
        ),
    ]
    for step in steps[1:]:
        rows.append(
            _row(
                data,
                TITLES[step],
                _field("warm", step, "build_seconds"),
                _seconds,
                extra=lambda c, s=step: (
                    _export("warm", s)(c) + _layers_new("warm", s)(c)
                ),
            )
        )
    rows += [
        _row(data, "image size (unpacked)", _field("warm", "cold", "image_bytes"), _gb),
        _row(
            data,
            "image / floor",
            _image_over_floor(data),
            lambda v: "n/a" if v is None else f"{v:.2f}×",
            ratio=False,
        ),
        _row(
            data,
            "dependency layers (unpacked)",
            _field("warm", "cold", "dependency_bytes"),
            _gb,
        ),
        _row(
            data,
            "image size in the registry (compressed)",
            _field("warm", "cold", "registry_image_bytes"),
            _gb,
        ),
        _row(
            data,
            "peak disk during the cold build",
            _field("warm", "cold", "peak_disk_bytes"),
            _gb,
            extra=_peak_over_deps("peak_disk_bytes"),
        ),
        _row(
            data,
            "of that, peak before the image export",
            _field("warm", "cold", "peak_disk_before_export_bytes"),
            _gb,
            extra=_peak_over_deps("peak_disk_before_export_bytes"),
        ),
        _row(
            data,
            "peak disk during a rebuild (largest)",
            _max_rebuild_peak,
            _gb,
            min_reference=MB,
        ),
        _row(
            data,
            "disk left behind after the cold build",
            _field("warm", "cold", "left_behind_bytes"),
            _gb,
            min_reference=MB,
        ),
        _row(
            data,
            "disk left behind after the last rebuild",
            _last_left_behind,
            _gb,
            min_reference=MB,
        ),
        _row(data, "first push", _field("warm", "cold", "pushed_bytes"), _mb),
    ]
    for step in steps[1:]:
        rows.append(
            _row(
                data,
                f"push after {SHORT[step]}",
                _field("warm", step, "pushed_bytes"),
                _mb,
                extra=_share("warm", step),
                min_reference=MB,
            )
        )
    rows.append(
        _row(
            data,
            "time from `docker run` to the first answer",
            lambda c: c.get("ttfr_seconds"),
            _seconds,
        )
    )
    lines += [row for row in rows if row]
    return lines


def fresh_table(data: dict) -> list[str]:
    header = ["figure", *(c["title"] for c in data["contenders"].values())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = []
    for step in data["fresh_steps"]:
        rows.append(
            _row(
                data,
                f"{TITLES[step]}, build + push",
                _total("fresh", step),
                _seconds,
                extra=_export("fresh", step),
            )
        )
        rows.append(
            _row(
                data,
                f"pushed after {SHORT[step]}",
                _field("fresh", step, "pushed_bytes"),
                _mb,
                min_reference=MB,
                extra=lambda c, s=step: (
                    _share("fresh", s)(c) + _layers_new("fresh", s)(c)
                ),
            )
        )
        rows.append(
            _row(
                data,
                f"peak disk, {SHORT[step]}",
                _field("fresh", step, "peak_disk_bytes"),
                _gb,
                min_reference=MB,
            )
        )
    lines += [row for row in rows if row]
    return lines


TITLES = {
    "cold": "cold build",
    "code": "rebuild after an app-code change",
    "dep": "rebuild after adding one small dependency",
    "torch": "rebuild after a torch version bump",
}
SHORT = {
    "cold": "cold build",
    "code": "app-code change",
    "dep": "small dependency",
    "torch": "torch bump",
}


def targets(data: dict) -> list[dict]:
    """Each target of the issue for ours: the figure, the bar, met or not."""
    contenders = data["contenders"]
    ours, recipe = contenders.get("ours"), contenders.get(REFERENCE)
    if not ours or not recipe:
        return []
    found: list[dict] = []

    def check(key: str, figure: float | None, bar: float, higher: bool, shown: str):
        if figure is None:
            return
        met = figure >= bar if higher else figure <= bar
        found.append(
            {
                "target": key,
                "text": TARGET_TEXT[key],
                "figure": figure,
                "bar": bar,
                "met": met,
                "shown": shown,
            }
        )

    ours_dep, recipe_dep = _step(ours, "warm", "dep"), _step(recipe, "warm", "dep")
    if ours_dep and recipe_dep:
        speedup = recipe_dep["build_seconds"] / ours_dep["build_seconds"]
        check(
            "dep_speedup",
            speedup,
            10,
            True,
            f"{speedup:.2f}× ({_seconds(recipe_dep['build_seconds'])} vs "
            f"{_seconds(ours_dep['build_seconds'])})",
        )
        share = 100 * ours_dep["pushed_bytes"] / ours_dep["registry_image_bytes"]
        check(
            "dep_push_share",
            share,
            5,
            False,
            f"{share:.1f}% ({_mb(ours_dep['pushed_bytes'])})",
        )

    def fresh(step: str, speed_key: str, share_key: str, bar: float) -> None:
        """Build + push on the fresh runner against the recipe's, and the push share."""
        ours_step, recipe_step = (
            _step(ours, "fresh", step),
            _step(recipe, "fresh", step),
        )
        if not ours_step or not recipe_step:
            return
        ours_total = _built_and_pushed(ours_step)
        recipe_total = _built_and_pushed(recipe_step)
        speedup = recipe_total / ours_total
        check(
            speed_key,
            speedup,
            bar,
            True,
            f"{speedup:.2f}× ({_seconds(recipe_total)} vs {_seconds(ours_total)})",
        )
        share = 100 * ours_step["pushed_bytes"] / ours_step["registry_image_bytes"]
        check(
            share_key,
            share,
            5,
            False,
            f"{share:.2f}% ({_mb(ours_step['pushed_bytes'])})",
        )

    fresh("dep", "dep_fresh_speedup", "dep_fresh_push_share", 10)
    ours_code = _step(ours, "warm", "code")
    if ours_code:
        check(
            "code_warm",
            ours_code["build_seconds"],
            20,
            False,
            f"{_seconds(ours_code['build_seconds'])} (export "
            f"{_seconds(ours_code.get('export_seconds'))})",
        )
    fresh("code", "code_fresh_speedup", "code_fresh_push_share", 5)
    ours_cold, recipe_cold = _step(ours, "warm", "cold"), _step(recipe, "warm", "cold")
    if ours_cold and recipe_cold:
        ratio = ours_cold["image_bytes"] / recipe_cold["image_bytes"]
        check(
            "image_size",
            ratio,
            1.0,
            False,
            f"{_gb(ours_cold['image_bytes'])} vs {_gb(recipe_cold['image_bytes'])}",
        )
        if ours_cold.get("dependency_disk_bytes"):
            ratio = ours_cold["peak_disk_bytes"] / ours_cold["dependency_disk_bytes"]
            check(
                "peak_disk",
                ratio,
                1.3,
                False,
                f"{ratio:.2f}× ({_gb(ours_cold['peak_disk_bytes'])} peak, "
                f"{_gb(ours_cold['dependency_disk_bytes'])} of dependency layers "
                "on disk)",
            )
            before = ours_cold.get("peak_disk_before_export_bytes")
            if before is not None:
                ratio = before / ours_cold["dependency_disk_bytes"]
                check(
                    "peak_disk_build",
                    ratio,
                    1.3,
                    False,
                    f"{ratio:.2f}× ({_gb(before)} peak before the export)",
                )
    return found


def _built_and_pushed(step: dict) -> float:
    return step["build_seconds"] + (step.get("push_seconds") or 0)


def targets_table(data: dict) -> list[str]:
    lines = ["| target (ours) | measured | met |", "|---|---|---|"]
    for target in data.get("targets", []):
        lines.append(
            f"| {target['text']} | {target['shown']} | "
            f"{'yes' if target['met'] else '**no**'} |"
        )
    return lines if len(lines) > 2 else []


def _ratio_note(data: dict) -> str:
    if REFERENCE not in data["contenders"]:
        return ""
    title = data["contenders"][REFERENCE]["title"]
    return f"Ratios in brackets are against the {title}, in the same run."


def markdown(data: dict) -> str:
    floor = data["floor"]
    parts = [
        f"## {data['app']} ({'quick' if data['quick'] else 'full'} run, "
        f"{data['date']})",
        "",
        f"Machine: {data['machine']['summary']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in data["versions"].items())
        + ".",
        "",
        f"Floor (run image + the app's packages in a plain venv, pip "
        f"`--no-cache-dir`): **{_gb(floor['total_bytes'])}** = run image "
        f"{_gb(floor['run_image_bytes'])} + packages {_gb(floor['packages_bytes'])}.",
        "",
    ]
    if "warm" in data["scenarios"]:
        parts += [
            "### Warm machine, exporting to the Docker daemon",
            "",
            _ratio_note(data),
            "",
            *warm_table(data),
            "",
        ]
    if table := layers_table(data):
        parts += ["### Layers of the cold build's image", "", *table, ""]
    if "fresh" in data["scenarios"] and data["fresh_steps"]:
        parts += [
            "### Fresh CI runner: local state wiped before every build; the registry "
            "holds the previous image (and ours' cache image)",
            "",
            *fresh_table(data),
            "",
        ]
    if data.get("targets"):
        parts += ["### Targets", "", *targets_table(data), ""]
    return "\n".join(parts)


def _cold_layers(contender: dict) -> list[tuple[str, int]]:
    """The warm cold build's layers, bottom first, the run image's as one."""
    cold = _step(contender, "warm", "cold")
    merged: list[tuple[str, int]] = []
    for layer in (cold or {}).get("layers") or []:
        if merged and merged[-1][0] == layer["name"] == "run image":
            merged[-1] = ("run image", merged[-1][1] + layer["size"])
        else:
            merged.append((layer["name"], layer["size"]))
    return merged


def layers_table(data: dict) -> list[str]:
    """Each contender's layers with their sizes; layers under 1 MB are counted."""
    rows = ["| contender | layers, bottom first (unpacked) |", "|---|---|"]
    for contender in data["contenders"].values():
        layers = _cold_layers(contender)
        if not layers:
            continue
        shown = [f"{name} {_mb(size)}" for name, size in layers if size >= MB]
        small = sum(1 for _, size in layers if size < MB)
        if small:
            shown.append(f"and {small} under 1 MB")
        rows.append(f"| {contender['title']} | {', '.join(shown)} |")
    return rows if len(rows) > 2 else []


CATEGORY_COLOURS = {
    "run image": "#9e9e9e",
    "torch": "#e4572e",
    "heavy": "#2e86ab",
    "rest": "#76b041",
    "app": "#8e44ad",
    "other": "#f3c969",
}


def _category(name: str) -> str:
    if name == "run image":
        return "run image"
    if name == "torch":
        return "torch"
    if name in ("app", "COPY . ./"):
        return "app"
    if name in ("zz-deps", "deps", "rest", "pip install -r"):
        return "rest"
    if name in OTHER_LAYER_NAMES:
        return "other"
    # Ours names a heavy package's layer after it; the Dockerfiles' are "pip:<name>".
    return "heavy"


# Layers that hold no packages: the lifecycle's and the Dockerfiles' own.
OTHER_LAYER_NAMES = {
    "venv",
    "uv",
    "workdir",
    "requirements.txt",
    "sbom",
    "launcher",
    "config",
    "process-types",
}
# About how many MB of the plot's axis one character of a layer's label takes.
LABEL_MB_PER_CHAR = 14


def plot(data: dict, path: Path) -> Path | None:
    """A horizontal stacked bar per contender (cold build) and one for the floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None

    bars: list[tuple[str, list[tuple[str, int]]]] = [
        (contender["title"], layers)
        for contender in data["contenders"].values()
        if (layers := _cold_layers(contender))
    ]
    floor = data["floor"]
    bars.append(
        (
            "floor: run image +\npackages in a plain venv",
            [
                ("run image", floor["run_image_bytes"]),
                ("packages", floor["packages_bytes"]),
            ],
        )
    )
    bars.reverse()

    figure, axes = plt.subplots(figsize=(12, 1.2 + 1.1 * len(bars)))
    for row, (_title, layers) in enumerate(bars):
        left = 0.0
        for name, size in layers:
            width = size / MB
            colour = CATEGORY_COLOURS["rest" if name == "packages" else _category(name)]
            axes.barh(
                row,
                width,
                left=left,
                color=colour,
                edgecolor="white",
                linewidth=0.8,
                height=0.6,
            )
            label = name.removeprefix("pip:")
            if width < LABEL_MB_PER_CHAR * len(label):
                label = ""  # too narrow for its name: the size alone, if that fits
            text = f"{label}\n{width:.0f}" if label else f"{width:.0f}"
            if width >= LABEL_MB_PER_CHAR * 3:
                axes.text(
                    left + width / 2,
                    row,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white",
                )
            left += width
        axes.text(left + 8, row, f"{left / 1000:.2f} GB", va="center", fontsize=9)
    axes.set_yticks(range(len(bars)), [title for title, _ in bars])
    axes.set_xlabel("MB, unpacked (layers bottom first, left to right)")
    axes.set_title(f"Layer sizes of the cold build's image: {data['app']}")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=colour)
        for colour in CATEGORY_COLOURS.values()
    ]
    axes.legend(
        handles,
        list(CATEGORY_COLOURS),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        fontsize=8,
        ncol=len(CATEGORY_COLOURS),
        frameon=False,
    )
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_xlim(0, max(sum(s for _, s in layers) for _, layers in bars) / MB * 1.12)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
