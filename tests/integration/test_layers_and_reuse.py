"""Which layer each package lands in, what a layer records, and what a rebuild reuses.

The layer rules: the torch family in ``torch``; each heavy package (the default list,
BP_ML_HEAVY_PACKAGES, or a wheel at least BP_ML_HEAVY_THRESHOLD_MB) in a layer of its
own; everything else in ``zz-deps``. A rebuild reinstalls a layer only when its key
(pins, Python, platform, index) changed, and says what changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from buildkit import AppFactory, Build, Builds, in_tree_project
from image_checks import (
    dependency_layers,
    distributions,
    layer_pins,
    layers_holding,
    log_lines,
    run_python,
    site_packages,
)
from support.index import IndexServer
from support.lifecycle import BuildFailed
from support.wheels import WheelFactory, WheelSpec, pypi_wheels

BIG_WHEEL = WheelSpec("bigpkg", "1.0.0", payload_mb=3)


@pytest.fixture(scope="module")
def big_wheel_index(
    wheel_factory: WheelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("big-wheel-index")
    wheel_factory.populate(root, [BIG_WHEEL])
    with IndexServer(root) as index:
        yield index


@pytest.fixture(scope="module")
def layered(
    builds: Builds, module_app: AppFactory, big_wheel_index: IndexServer
) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": """\
                torch==2.13.0
                scikit-learn==1.8.0
                numpy==2.3.0
                flask==3.0.3
                smalldep==1.17.0
                pthpkg==1.0.0
                bigpkg==1.0.0
            """
        },
        name="layered",
    )
    build = builds.run(app_dir, layered_env(big_wheel_index))
    assert build.result.success, build.result.describe_failure()
    return build


def layered_env(big_wheel_index: IndexServer) -> dict[str, str]:
    return {
        "PIP_EXTRA_INDEX_URL": big_wheel_index.url,
        "BP_ML_HEAVY_PACKAGES": "smalldep",
        "BP_ML_HEAVY_THRESHOLD_MB": "2",
    }


# --- Layer plan -----------------------------------------------------------------------


def test_each_package_is_in_exactly_the_layer_its_rule_gives(layered: Build) -> None:
    image = layered.image
    expected = {
        "torch": "torch",
        "numpy": "numpy",
        "scipy": "scipy",
        "scikit-learn": "scikit-learn",
        "smalldep": "smalldep",
        "flask": "zz-deps",
        "pthpkg": "zz-deps",
        "filelock": "zz-deps",
        "typing-extensions": "zz-deps",
    }

    assert {name: layers_holding(image, name) for name in expected} == {
        name: [layer] for name, layer in expected.items()
    }


def test_each_layer_records_exactly_its_pins(layered: Build) -> None:
    image = layered.image

    assert layer_pins(image, "torch") == ["torch==2.13.0+cpu"]
    assert layer_pins(image, "numpy") == ["numpy==2.3.0"]
    assert layer_pins(image, "scipy") == ["scipy==1.16.0"]
    assert layer_pins(image, "scikit-learn") == ["scikit-learn==1.8.0"]
    assert layer_pins(image, "smalldep") == ["smalldep==1.17.0"]
    assert {
        "filelock==3.16.1",
        "flask==3.0.3",
        "pthpkg==1.0.0",
        "typing-extensions==4.12.2",
    } <= set(layer_pins(image, "zz-deps"))


def test_log_gives_the_reason_for_each_own_layer(layered: Build) -> None:
    output = layered.output

    assert log_lines(output, r"^torch: torch 2\.13\.0\+cpu \(torch family\)")
    assert log_lines(output, r"^numpy: numpy 2\.3\.0 \(listed as heavy\)")
    assert log_lines(output, r"^smalldep: smalldep 1\.17\.0 \(listed as heavy\)")


def test_wheel_over_the_size_threshold_gets_its_own_layer(layered: Build) -> None:
    # bigpkg's wheel is 3 MB against BP_ML_HEAVY_THRESHOLD_MB=2; the index is a
    # plain PEP 503 one, like most private mirrors: its pages give no file sizes.
    image = layered.image

    assert layers_holding(image, "bigpkg") == ["bigpkg"]
    assert layer_pins(image, "bigpkg") == ["bigpkg==1.0.0"]
    assert log_lines(
        layered.output, r"^bigpkg: bigpkg 1\.0\.0 \(wheel over threshold\)"
    )
    assert "bigpkg==1.0.0" not in layer_pins(image, "zz-deps")


def test_layer_metadata_records_python_abi_platform_and_index(
    layered: Build,
    build_python: dict[str, str],
    pypi_index: IndexServer,
    cpu_index: IndexServer,
    big_wheel_index: IndexServer,
) -> None:
    for name in dependency_layers(layered.image):
        metadata = layered.image.layers[name].metadata
        assert metadata["python"] == build_python["version"], name
        assert metadata["abi"] == build_python["abi"], name
        assert "linux" in metadata["platform"] and metadata["platform"], name
        if name == "torch":
            assert metadata["index"] == cpu_index.url
        else:
            assert pypi_index.url in metadata["index"], name
            assert big_wheel_index.url in metadata["index"], name


def test_every_layer_installs_completely(layered: Build) -> None:
    (big_layer,) = layers_holding(layered.image, "bigpkg")
    big = site_packages(layered.image, big_layer) / "bigpkg" / "_payload.bin"

    assert big.stat().st_size == int(BIG_WHEEL.payload_mb * 1024 * 1024)
    versions = run_python(
        layered.image,
        "import bigpkg, numpy; print(bigpkg.__version__, numpy.__version__)",
    )
    assert versions.split() == ["1.0.0", "2.3.0"]


def test_rebuild_plans_the_same_layers_and_reuses_them_all(
    builds: Builds, layered: Build, big_wheel_index: IndexServer
) -> None:
    # Whatever the size and list rules decided, an unchanged rebuild (which reads
    # the sizes back from the restored records) decides the same.
    app_dir = layered.image.app_dir
    build = builds.run(app_dir, layered_env(big_wheel_index), previous=layered)

    assert build.result.success, build.result.describe_failure()
    assert sorted(build.image.layers) == sorted(layered.image.layers)
    statuses = {n: layer.status for n, layer in build.image.layers.items()}
    assert set(statuses.values()) <= {"reused", "unchanged"}, statuses
    assert build.pypi_downloads == [] and build.cpu_downloads == []


# --- Rebuilds -------------------------------------------------------------------------

REUSE_APP = """\
from flask import Flask

app = Flask(__name__)
"""


def requirements(numpy: str = "2.3.0", extra: str = "") -> str:
    return f"torch==2.13.0\nnumpy=={numpy}\nscikit-learn==1.8.0\nflask==3.0.3\n{extra}"


@pytest.fixture(scope="module")
def cold(builds: Builds, module_app: AppFactory) -> Build:
    """The first build of the app on an empty builder: no image, no cache."""
    app_dir = module_app(
        {"requirements.txt": requirements(), "app.py": REUSE_APP}, name="reuse-cold"
    )
    build = builds.run(app_dir, cache=None)
    assert build.result.success, build.result.describe_failure()
    return build


def rebuild(
    builds: Builds, module_app: AppFactory, cold: Build, name: str, files: dict
) -> Build:
    app_dir = module_app(
        {"requirements.txt": requirements(), "app.py": REUSE_APP, **files}, name=name
    )
    build = builds.run(app_dir, previous=cold)
    assert build.result.success, build.result.describe_failure()
    return build


def statuses(build: Build) -> dict[str, str]:
    return {
        name: build.image.layers[name].status for name in dependency_layers(build.image)
    }


def test_cold_build_installs_every_layer(cold: Build) -> None:
    assert statuses(cold) == {
        "zz-deps": "new",
        "numpy": "new",
        "scikit-learn": "new",
        "scipy": "new",
        "torch": "new",
    }
    assert "uv-0.13.9" in " ".join(cold.pypi_downloads)
    assert cold.cpu_downloads == ["torch-2.13.0+cpu-py3-none-any.whl"]


@pytest.fixture(scope="module")
def unchanged(builds: Builds, module_app: AppFactory, cold: Build) -> Build:
    return rebuild(builds, module_app, cold, "reuse-unchanged", {})


def test_rebuild_without_changes_reuses_every_layer(
    unchanged: Build, cold: Build
) -> None:
    assert set(statuses(unchanged).values()) <= {"reused", "unchanged"}
    assert unchanged.image.layers["venv"].status in ("reused", "unchanged")
    assert unchanged.image.digests() == cold.image.digests()


@pytest.mark.parametrize(
    "env",
    [{"UV_PRERELEASE": "allow"}, {"BP_ML_HEAVY_THRESHOLD_MB": "0"}],
    ids=["uv-setting", "size-rule-off"],
)
def test_a_setting_that_changes_the_resolution_resolves_again(
    builds: Builds, module_app: AppFactory, cold: Build, env: dict
) -> None:
    app_dir = module_app(
        {"requirements.txt": requirements(), "app.py": REUSE_APP},
        name=f"reuse-{'-'.join(env).lower()}",
    )

    build = builds.run(app_dir, env, previous=cold)

    assert build.result.success, build.result.describe_failure()
    assert "Using the previous build's resolution" not in build.output
    assert log_lines(build.output, r"Resolving with uv")


def test_rebuild_without_changes_downloads_nothing_and_runs_no_uv(
    unchanged: Build,
) -> None:
    # Not even an index page: uv neither resolved nor installed anything.
    assert unchanged.pypi_requests == []
    assert unchanged.cpu_requests == []
    assert "Resolving with uv" not in unchanged.output
    assert "Preparing uv" not in unchanged.output
    assert log_lines(unchanged.output, r"Using the previous build's resolution")


def test_rebuild_keeps_uv_in_the_cache_even_when_unused(unchanged: Build) -> None:
    assert unchanged.result.cache is not None
    assert "uv" in unchanged.result.cache.layers


def test_rebuild_after_an_app_code_change_reuses_every_layer(
    builds: Builds, module_app: AppFactory, cold: Build
) -> None:
    changed_app = REUSE_APP + '\n\n@app.get("/")\ndef index():\n    return "v2"\n'
    build = rebuild(builds, module_app, cold, "reuse-code", {"app.py": changed_app})

    assert set(statuses(build).values()) <= {"reused", "unchanged"}
    assert build.pypi_requests == [] and build.cpu_requests == []
    assert (build.image.app_dir / "app.py").read_text() == changed_app


def test_rebuild_without_the_build_cache_still_reuses_every_layer(
    builds: Builds, module_app: AppFactory, cold: Build
) -> None:
    # A builder whose cache volume was lost: launch layers come from the image.
    app_dir = module_app(
        {"requirements.txt": requirements(), "app.py": REUSE_APP}, name="reuse-no-cache"
    )
    build = builds.run(app_dir, previous=cold.result.image, cache=None)

    assert build.result.success, build.result.describe_failure()
    assert set(statuses(build).values()) <= {"reused", "unchanged"}
    assert build.pypi_downloads == [] and build.cpu_downloads == []


def test_changed_pin_rebuilds_only_its_layer_and_says_why(
    builds: Builds, module_app: AppFactory, cold: Build
) -> None:
    build = rebuild(
        builds,
        module_app,
        cold,
        "reuse-numpy",
        {"requirements.txt": requirements(numpy="2.3.1")},
    )

    assert statuses(build) == {
        "zz-deps": "reused",
        "numpy": "new",
        "scikit-learn": "reused",
        "scipy": "reused",
        "torch": "reused",
    }
    assert log_lines(build.output, r"numpy changed from 2\.3\.0 to 2\.3\.1")
    assert build.pypi_downloads == ["numpy-2.3.1-py3-none-any.whl"]
    assert build.cpu_downloads == []
    assert distributions(build.image)["numpy"] == "2.3.1"


def test_added_small_dependency_rebuilds_only_deps(
    builds: Builds, module_app: AppFactory, cold: Build
) -> None:
    build = rebuild(
        builds,
        module_app,
        cold,
        "reuse-smalldep",
        {"requirements.txt": requirements(extra="smalldep==1.17.0\n")},
    )

    assert statuses(build) == {
        "zz-deps": "new",
        "numpy": "reused",
        "scikit-learn": "reused",
        "scipy": "reused",
        "torch": "reused",
    }
    assert log_lines(build.output, r"added smalldep 1\.17\.0")
    assert not [f for f in build.pypi_downloads if f.startswith(("numpy", "sci"))]
    assert build.cpu_downloads == []
    assert distributions(build.image)["smalldep"] == "1.17.0"


def test_removed_dependency_takes_its_layers_away(
    builds: Builds, module_app: AppFactory, cold: Build
) -> None:
    without_sklearn = "torch==2.13.0\nnumpy==2.3.0\nflask==3.0.3\n"
    build = rebuild(
        builds, module_app, cold, "reuse-removed", {"requirements.txt": without_sklearn}
    )

    assert statuses(build) == {
        "zz-deps": "reused",
        "numpy": "reused",
        "torch": "reused",
    }
    assert log_lines(build.output, r"Removing layer scikit-learn")
    assert log_lines(build.output, r"Removing layer scipy")
    done = build.image.run(["python", "-c", "import sklearn"])
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


def local_package_app(code: str) -> dict[str, str]:
    project = in_tree_project("mylib", "1.0.0", code)
    return {
        "requirements.txt": "scikit-learn==1.8.0\n./libs/mylib\n",
        **{f"libs/mylib/{name}": text for name, text in project.items()},
    }


def test_changed_local_package_is_installed_again(
    builds: Builds, app: AppFactory
) -> None:
    # The version stays 1.0.0, as it does while someone edits a library in the repo.
    first = builds.run(app(local_package_app('CODE = "v1"\n'), name="v1"))
    assert first.result.success, first.result.describe_failure()
    second = builds.run(
        app(local_package_app('CODE = "v2"\n'), name="v2"), previous=first
    )

    assert second.result.success, second.result.describe_failure()
    assert run_python(second.image, "import mylib; print(mylib.CODE)") == "v2\n"
    assert second.image.layers["scikit-learn"].status == "reused"


# --- A build that fails half-way ------------------------------------------------------


def corrupt_in_place(wheel: Path) -> None:
    """Flip bytes inside the wheel's payload: the zip's directory (and so the
    metadata a resolver reads) stays intact, but extraction fails its CRC check."""
    data = bytearray(wheel.read_bytes())
    middle = len(data) // 2
    for offset in range(middle, middle + 64):
        data[offset] ^= 0xFF
    wheel.write_bytes(bytes(data))


def test_failed_build_leaves_nothing_that_a_later_build_reuses(
    builds: Builds, app: AppFactory, make_index
) -> None:
    names = ("numpy", "flask", "filelock", "typing-extensions")
    index = make_index([s for s in pypi_wheels() if s.name in names])
    env = {"PIP_INDEX_URL": index.url}
    first_dir = app(
        {"requirements.txt": "torch==2.13.0\nnumpy==2.3.0\nflask==3.0.3\n"}, name="v1"
    )
    first = builds.run(first_dir, env)
    assert first.result.success, first.result.describe_failure()

    # The second layer's new wheel is corrupt: torch is reused, numpy fails.
    wheel = index.root / "numpy-2.3.1-py3-none-any.whl"
    good = wheel.read_bytes()
    corrupt_in_place(wheel)
    second_dir = app(
        {"requirements.txt": "torch==2.13.0\nnumpy==2.3.1\nflask==3.0.3\n"}, name="v2"
    )
    failed = builds.run(second_dir, env, previous=first)

    assert not failed.result.success
    assert "[Error: Could not install layer numpy]" in failed.output
    with pytest.raises(BuildFailed):
        failed.result.image  # noqa: B018 - the exporter made no image
    assert failed.result.cache is None
    left = builds.lifecycle.buildpack_layers_dir
    assert not (left / "numpy").exists() and not (left / "numpy.toml").exists()

    # The index is fixed; the next build starts from the last successful image.
    wheel.write_bytes(good)
    fixed = builds.run(second_dir, env, previous=first)

    assert fixed.result.success, fixed.result.describe_failure()
    assert statuses(fixed)["numpy"] == "new"
    assert statuses(fixed)["torch"] == "reused"
    payload = site_packages(fixed.image, "numpy") / "numpy" / "_payload.bin"
    assert payload.stat().st_size == 1024 * 1024
    assert (
        run_python(fixed.image, "import numpy; print(numpy.__version__)").strip()
        == "2.3.1"
    )
