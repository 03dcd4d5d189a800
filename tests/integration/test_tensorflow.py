"""TensorFlow apps (field case F16): an old pin with wheels only for old Pythons
fails with the range it supports; a current one gets a layer of its own, and the
build points at tensorflow-cpu."""

from __future__ import annotations

import platform
import shutil

import pytest
from buildkit import AppFactory, Build, Builds
from image_checks import distributions, layer_pins, layers_holding, log_lines
from support.wheels import WheelFactory, WheelSpec, pypi_wheels


@pytest.fixture
def tensorflow_index(make_index, wheel_factory: WheelFactory):
    """tensorflow 2.1.0 with wheels for CPython 3.5 to 3.7 only; 2.15.0 for any."""
    specs = [s for s in pypi_wheels() if s.name in ("numpy", "gunicorn", "smalldep")]
    specs.append(WheelSpec("tensorflow", "2.15.0", requires=("numpy",), payload_mb=1))
    index = make_index(specs)
    old = wheel_factory.build(WheelSpec("tensorflow", "2.1.0"))
    arch = platform.machine()
    for tag in ("cp35-cp35m", "cp36-cp36m", "cp37-cp37m"):
        name = f"tensorflow-2.1.0-{tag}-manylinux2010_{arch}.whl"
        shutil.copyfile(old, index.root / name)
    return index


def test_old_tensorflow_pin_fails_with_the_pythons_it_supports(
    builds: Builds,
    app: AppFactory,
    tensorflow_index,
    build_python: dict[str, str],
) -> None:
    app_dir = app({"requirements.txt": "numpy\ntensorflow==2.1.0\ngunicorn\n"})

    build = builds.run(app_dir, {"PIP_INDEX_URL": tensorflow_index.url})

    assert not build.result.success
    output = build.output
    title = "[Error: No installable wheel for this Python]\n"
    assert title in output
    cause = output.split(title, 1)[1].splitlines()[0]
    assert cause.startswith("tensorflow"), cause
    assert f"Python {build_python['minor']}" in cause
    assert "requirements.txt:2" in output
    # The Pythons it does have wheels for.
    assert log_lines(output, r"cp37|3\.7"), output


@pytest.fixture
def current_tensorflow(builds: Builds, app: AppFactory, tensorflow_index) -> Build:
    app_dir = app({"requirements.txt": "tensorflow==2.15.0\ngunicorn\nsmalldep\n"})
    build = builds.run(app_dir, {"PIP_INDEX_URL": tensorflow_index.url})
    assert build.result.success, build.result.describe_failure()
    return build


def test_current_tensorflow_gets_its_own_layer(current_tensorflow: Build) -> None:
    image = current_tensorflow.image

    assert distributions(image)["tensorflow"] == "2.15.0"
    assert layers_holding(image, "tensorflow") == ["tensorflow"]
    assert layer_pins(image, "tensorflow") == ["tensorflow==2.15.0"]


def test_tensorflow_build_points_at_tensorflow_cpu(current_tensorflow: Build) -> None:
    # F16: the full tensorflow wheel carries GPU support a CPU image cannot use.
    assert log_lines(current_tensorflow.output, r"tensorflow-cpu")
