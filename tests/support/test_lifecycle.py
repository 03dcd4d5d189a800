"""The emulated lifecycle restores, checks and exports layers as lifecycle v0.21 does.

A fake buildpack written into tmp does whatever the app's ``steps.json`` says and
prints what it found in its layers directory, so each rule is proved by a build.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .lifecycle import BuildFailed, BuildResult, Lifecycle, apply_env_dir

FAKE_DETECT = """\
#!/usr/bin/env python3
import json, os, sys
print("SEEN-DETECT " + json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                                   "env": dict(os.environ)}))
if os.path.exists("detect-exit"):
    sys.exit(int(open("detect-exit").read()))
plan = open("plan.toml").read() if os.path.exists("plan.toml") else (
    '[[provides]]\\nname = "fake"\\n[[requires]]\\nname = "fake"\\n'
    '[requires.metadata]\\nwho = "app"\\n')
with open(os.environ["CNB_BUILD_PLAN_PATH"], "w") as f:
    f.write(plan)
"""

FAKE_BUILD = """\
#!/usr/bin/env python3
import json, os, shutil, sys
layers = os.environ["CNB_LAYERS_DIR"]
seen = {}
for name in sorted(os.listdir(layers)):
    path = os.path.join(layers, name)
    if os.path.isdir(path):
        seen[name + "/"] = sorted(
            os.path.relpath(os.path.join(d, f), path)
            for d, _, files in os.walk(path) for f in files)
    else:
        seen[name] = open(path).read()
print("SEEN " + json.dumps({"argv": sys.argv[1:], "layers": seen,
                            "plan": open(os.environ["CNB_BP_PLAN_PATH"]).read(),
                            "env": dict(os.environ)}))
steps = json.load(open("steps.json"))
for name, step in steps.get("layers", {}).items():
    if step.get("toml") is not None:
        with open(os.path.join(layers, name + ".toml"), "w") as f:
            f.write(step["toml"])
    if step.get("delete_toml"):
        os.remove(os.path.join(layers, name + ".toml"))
    if step.get("files") is not None:
        os.makedirs(os.path.join(layers, name), exist_ok=True)
        for rel, content in step["files"].items():
            target = os.path.join(layers, name, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write(content)
            if rel.startswith(("bin/", "exec.d/")):
                os.chmod(target, 0o755)
for name in ("launch.toml", "store.toml", "build.toml"):
    if name in steps:
        with open(os.path.join(layers, name), "w") as f:
            f.write(steps[name])
sys.exit(steps.get("exit", 0))
"""

LAUNCH_ONLY = '[types]\nlaunch = true\n[metadata]\nkey = "{key}"\n'
BUILD_LAUNCH = "[types]\nlaunch = true\nbuild = true\n"
CACHE_ONLY = '[types]\ncache = true\n[metadata]\nkey = "{key}"\n'
LAUNCH_CACHE = '[types]\nlaunch = true\ncache = true\n[metadata]\nkey = "{key}"\n'
ALL_FALSE = "[types]\n[metadata]\nkey = 1\n"

Build = Callable[..., BuildResult]


@pytest.fixture
def fake_buildpack(tmp_path: Path) -> Path:
    root = tmp_path / "buildpack"
    (root / "bin").mkdir(parents=True)
    (root / "buildpack.toml").write_text(
        'api = "0.12"\n[buildpack]\nid = "test/fake"\nversion = "0.0.1"\n'
        '[[targets]]\nos = "linux"\n'
    )
    for name, source in (("detect", FAKE_DETECT), ("build", FAKE_BUILD)):
        (root / "bin" / name).write_text(source)
        (root / "bin" / name).chmod(0o755)
    return root


@pytest.fixture
def lifecycle(
    fake_buildpack: Path, tmp_path: Path, build_image_env: dict[str, str]
) -> Lifecycle:
    outer = dict(build_image_env, SECRET_FROM_HOST="leak", LANG="C.UTF-8")
    return Lifecycle(fake_buildpack, tmp_path / "cnb", outer_env=outer, echo=False)


@pytest.fixture
def build(lifecycle: Lifecycle, tmp_path: Path) -> Build:
    """``build(steps, previous=None, **kwargs)``: one app per call, then build it."""
    counter = iter(range(1000))

    def run(steps: dict[str, Any], previous: Any = None, **kwargs: Any) -> BuildResult:
        app = tmp_path / f"app{next(counter)}"
        app.mkdir()
        (app / "steps.json").write_text(json.dumps(steps))
        return lifecycle.run_build(app, kwargs.pop("env", None), previous, **kwargs)

    return run


def seen(result: BuildResult) -> dict[str, Any]:
    for line in result.output.splitlines():
        if line.startswith("SEEN "):
            return json.loads(line[5:])
    raise AssertionError(f"fake buildpack printed nothing:\n{result.output}")


def every_kind(key: str) -> dict[str, Any]:
    files = {"data.txt": key}
    return {
        "layers": {
            "launch-only": {"toml": LAUNCH_ONLY.format(key=key), "files": files},
            "build-launch": {"toml": BUILD_LAUNCH, "files": files},
            "cache-only": {"toml": CACHE_ONLY.format(key=key), "files": files},
            "launch-cache": {"toml": LAUNCH_CACHE.format(key=key), "files": files},
            "all-false": {"toml": ALL_FALSE, "files": files},
            "no-toml": {"files": files},
        },
        "store.toml": '[metadata]\nbuilds = "1"\n',
    }


# --- restore -----------------------------------------------------------------------


def test_first_build_exports_launch_layers_and_caches_cache_layers(
    build: Build,
) -> None:
    result = build(every_kind("one"))

    image = result.image
    assert sorted(image.layers) == ["build-launch", "launch-cache", "launch-only"]
    assert image.new == ["build-launch", "launch-cache", "launch-only"]
    assert image.layers["launch-only"].metadata == {"key": "one"}
    assert result.cache is not None
    assert sorted(result.cache.layers) == ["cache-only", "launch-cache"]


def test_rebuild_restores_each_kind_of_layer_as_the_lifecycle_does(
    build: Build,
) -> None:
    first = build(every_kind("one"))
    second = build({}, previous=first)

    layers = seen(second)["layers"]
    assert layers["launch-only.toml"] == '[metadata]\nkey = "one"\n'
    assert "launch-only/" not in layers
    assert "build-launch.toml" not in layers and "build-launch/" not in layers
    assert layers["cache-only.toml"] == '[metadata]\nkey = "one"\n'
    assert layers["cache-only/"] == ["data.txt"]
    assert layers["launch-cache.toml"] == '[metadata]\nkey = "one"\n'
    assert layers["launch-cache/"] == ["data.txt"]
    assert "all-false.toml" not in layers and "no-toml/" not in layers
    assert layers["store.toml"] == '[metadata]\nbuilds = "1"\n'


def test_untouched_restored_tomls_are_dropped_from_image_and_cache(
    build: Build,
) -> None:
    first = build(every_kind("one"))
    second = build({}, previous=first)

    assert second.image.layers == {}
    assert second.cache is not None and second.cache.layers == {}
    assert second.image.store == {"metadata": {"builds": "1"}}


def test_launch_layer_without_directory_is_reused_from_previous_image(
    build: Build, lifecycle: Lifecycle
) -> None:
    first = build(every_kind("one"))
    relabel = {"layers": {"launch-only": {"toml": LAUNCH_ONLY.format(key="two")}}}
    second = build(relabel, previous=first)

    layer = second.image.layers["launch-only"]
    assert second.image.reused == ["launch-only"]
    assert layer.digest == first.image.layers["launch-only"].digest
    assert layer.metadata == {"key": "two"}
    assert "Reusing layer 'test/fake:launch-only'" in second.lifecycle_log
    layers_dir = second.image.materialize()
    assert (layers_dir / "test_fake" / "launch-only" / "data.txt").read_text() == "one"


def test_reuse_without_previous_image_fails(build: Build) -> None:
    result = build({"layers": {"launch-only": {"toml": LAUNCH_ONLY.format(key="x")}}})

    assert not result.success
    assert result.error == (
        "cannot reuse 'test/fake:launch-only', previous image has no metadata "
        "for layer 'test/fake:launch-only'"
    )
    with pytest.raises(BuildFailed, match="cannot reuse"):
        _ = result.image


def test_launch_cache_layer_without_contents_fails(build: Build) -> None:
    first = build(every_kind("one"))
    # With the cache cleared nothing is restored, so the layer has no directory.
    steps = {"layers": {"launch-cache": {"toml": LAUNCH_CACHE.format(key="x")}}}
    result = build(steps, previous=first, clear_cache=True)

    assert (
        result.error
        == "layer 'test/fake:launch-cache' is cache=true but has no contents"
    )


def test_empty_directory_makes_an_empty_new_layer(build: Build) -> None:
    first = build(every_kind("one"))
    steps = {
        "layers": {"launch-only": {"toml": LAUNCH_ONLY.format(key="one"), "files": {}}}
    }
    second = build(steps, previous=first)

    assert second.image.new == ["launch-only"]
    assert (
        second.image.layers["launch-only"].digest
        != first.image.layers["launch-only"].digest
    )


def test_same_contents_rebuilt_give_the_same_digest(build: Build) -> None:
    first = build(every_kind("one"))
    second = build(every_kind("one"), previous=first)

    assert second.image.digests() == first.image.digests()
    assert second.image.new == []
    assert second.image.layers["launch-only"].status == "unchanged"


def test_flags_outside_types_table_fail_the_build(build: Build) -> None:
    result = build(
        {"layers": {"bad": {"toml": "launch = true\n", "files": {"a": "b"}}}}
    )

    assert result.error is not None
    assert "should be in the types table" in result.error


def test_all_false_layer_is_set_aside(build: Build, lifecycle: Lifecycle) -> None:
    result = build({"layers": {"off": {"toml": ALL_FALSE, "files": {"a": "b"}}}})

    assert result.image.layers == {}
    assert (lifecycle.buildpack_layers_dir / "off.ignore").is_dir()


def test_cache_only_layer_without_contents_only_warns(build: Build) -> None:
    result = build({"layers": {"c": {"toml": CACHE_ONLY.format(key="k")}}})

    assert result.success
    assert any(
        "Failed to cache layer 'test/fake:c'" in line for line in result.lifecycle_log
    )


def test_cache_from_another_build_has_the_wrong_sha(build: Build) -> None:
    first = build(every_kind("one"))
    other = build(every_kind("other"))
    result = build({}, previous=first.image, cache=other.cache)

    layers = seen(result)["layers"]
    assert "launch-cache.toml" not in layers and "launch-cache/" not in layers
    assert layers["cache-only/"] == ["data.txt"]  # cache-only metadata came with it
    assert 'Removing "test/fake:launch-cache", wrong sha' in result.lifecycle_log


def test_clear_cache_restores_only_store_toml(build: Build) -> None:
    first = build(every_kind("one"))
    result = build({}, previous=first, clear_cache=True)

    assert sorted(seen(result)["layers"]) == ["store.toml"]


def test_failed_build_exports_nothing(build: Build) -> None:
    result = build({"exit": 3})

    assert result.exit_code == 3
    assert not result.success and result.cache is None


# --- detect and the build environment ---------------------------------------------


def test_build_env_is_filtered_and_platform_env_applies(
    build: Build, lifecycle: Lifecycle
) -> None:
    result = build({}, env={"BP_ML_THING": "on", "PATH": "/opt/extra"})

    env = seen(result)["env"]
    assert "SECRET_FROM_HOST" not in env and "LANG" not in env
    assert env["BP_ML_THING"] == "on"
    assert env["PATH"].startswith("/opt/extra:")
    assert env["CNB_LAYERS_DIR"] == str(lifecycle.buildpack_layers_dir)
    assert env["CNB_EXEC_ENV"] == "production"
    assert env["CNB_TARGET_OS"] == "linux"
    assert env["HOME"] == str(lifecycle.root / "home")
    assert seen(result)["argv"] == [
        str(lifecycle.buildpack_layers_dir),
        str(lifecycle.platform_dir),
        env["CNB_BP_PLAN_PATH"],
    ]


def test_buildpack_plan_holds_the_resolved_requires(build: Build) -> None:
    result = build({})

    assert result.detect.entries == [{"name": "fake", "metadata": {"who": "app"}}]
    assert 'name = "fake"' in seen(result)["plan"]


def test_detect_gets_its_env_and_arguments(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    result = lifecycle.run_detect(app, {"BP_X": "1"})

    line = next(
        text for text in result.output.splitlines() if text.startswith("SEEN-DETECT ")
    )
    detected = json.loads(line[len("SEEN-DETECT ") :])
    assert result.passed
    assert detected["cwd"] == str(lifecycle.workspace)
    assert detected["argv"] == [
        str(lifecycle.platform_dir),
        detected["env"]["CNB_BUILD_PLAN_PATH"],
    ]
    assert detected["env"]["BP_X"] == "1"
    assert "SECRET_FROM_HOST" not in detected["env"]


@pytest.mark.parametrize("code", [100, 1])
def test_detect_failure_stops_the_build(
    tmp_path: Path, lifecycle: Lifecycle, code: int
) -> None:
    app = tmp_path / "failing"
    app.mkdir()
    (app / "detect-exit").write_text(str(code))
    result = lifecycle.run_build(app)

    assert not result.detect.passed and result.detect.exit_code == code
    with pytest.raises(BuildFailed, match="detect failed"):
        _ = result.image


def test_provide_nobody_requires_fails_resolution(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "plan.toml").write_text('[[provides]]\nname = "orphan"\n')
    assert lifecycle.run_detect(app).error is not None

    (app / "plan.toml").write_text(
        '[[provides]]\nname = "orphan"\n[[or]]\n[[or.provides]]\nname = "x"\n'
        '[[or.requires]]\nname = "x"\n'
    )
    assert lifecycle.run_detect(app).entries == [{"name": "x", "metadata": {}}]


# --- launch --------------------------------------------------------------------------


def test_launch_env_follows_env_file_rules_and_layer_order(build: Build) -> None:
    steps = {
        "layers": {
            "a": {
                "toml": "[types]\nlaunch = true\n",
                "files": {
                    "bin/hello-a": "#!/bin/sh\necho hello from a\n",
                    "env/PYTHONPATH.prepend": "/a",
                    "env/PYTHONPATH.delim": ":",
                    "env.launch/GREETING.default": "from-a",
                    "env.launch/web/ONLY_WEB": "yes",
                },
            },
            "b": {
                "toml": "[types]\nlaunch = true\n",
                "files": {
                    "env/PYTHONPATH.prepend": "/b",
                    "env/PYTHONPATH.delim": ":",
                    "env.launch/GREETING.default": "from-b",
                    "env.launch/NOSEP.append": "x",
                    "exec.d/set-token": "#!/bin/sh\necho 'TOKEN = \"t-1\"' >&3\n",
                },
            },
        },
        "launch.toml": textwrap.dedent(
            """\
            [[processes]]
            type = "web"
            command = ["hello-a"]
            args = ["ignored"]
            default = true
            """
        ),
    }
    image = build(steps).image

    env = image.launch_env("web", env={"PATH": "/usr/bin:/bin", "NOSEP": "y"})
    assert env["PYTHONPATH"] == "/b:/a"
    assert env["GREETING"] == "from-a"
    assert env["ONLY_WEB"] == "yes"
    assert env["NOSEP"] == "yx"
    assert env["TOKEN"] == "t-1"
    assert env["PATH"] == f"{image.layer_dir('a') / 'bin'}:/usr/bin:/bin"
    assert "ONLY_WEB" not in image.launch_env(None, env={"PATH": "/usr/bin:/bin"})
    assert image.default_process() == "web"
    assert image.run(process="web").stdout == "hello from a\n"


def test_run_uses_the_app_dir_from_the_image(build: Build) -> None:
    image = build({}).image
    result = image.run(["python3", "-c", "import os; print(sorted(os.listdir()))"])

    assert result.stdout.strip() == "['steps.json']"


def test_launch_toml_rules_are_checked(build: Build) -> None:
    two_defaults = (
        '[[processes]]\ntype = "a"\ncommand = ["x"]\ndefault = true\n'
        '[[processes]]\ntype = "b"\ncommand = ["y"]\ndefault = true\n'
    )
    assert build({"launch.toml": two_defaults}).error == (
        "multiple default process types aren't allowed"
    )
    string_command = '[[processes]]\ntype = "a"\ncommand = "x y"\n'
    assert "array of strings" in (build({"launch.toml": string_command}).error or "")


def test_apply_env_dir_override_and_verbatim_contents(tmp_path: Path) -> None:
    (tmp_path / "A").write_text("1\n")
    (tmp_path / "B.override").write_text("2")
    (tmp_path / "C.append").write_text("3")
    (tmp_path / "C.delim").write_text(",")
    env = {"B": "old", "C": "0"}
    apply_env_dir(env, tmp_path)
    assert env == {"A": "1\n", "B": "2", "C": "0,3"}


def test_layers_path_is_the_same_in_every_build(
    build: Build, lifecycle: Lifecycle
) -> None:
    steps = {"layers": {"l": {"toml": "[types]\nlaunch = true\n", "files": {"x": "1"}}}}
    first = build(steps)
    second = build(steps, previous=first)

    assert seen(first)["env"]["CNB_LAYERS_DIR"] == seen(second)["env"]["CNB_LAYERS_DIR"]
    first.image.materialize()
    assert os.path.samefile(
        first.image.layer_dir("l") / "x", first.image.layers["l"].path / "x"
    )
