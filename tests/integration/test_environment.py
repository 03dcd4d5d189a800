"""At launch the layers act as one environment: imports, .pth files, namespace
packages split across layers, console scripts, and distribution metadata."""

from __future__ import annotations

import pytest
from buildkit import AppFactory, Build, Builds
from image_checks import (
    distributions,
    layers_holding,
    run_python,
    unmet_requirements,
)
from packaging.utils import canonicalize_name

IMPORTS = (
    "torch",
    "sklearn",
    "scipy",
    "numpy",
    "flask",
    "gunicorn",
    "pthpkg",
    "nsroot.a",
    "nsroot.b",
    "filelock",
    "typing_extensions",
)


@pytest.fixture(scope="module")
def joined(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": """\
                torch==2.13.0
                scikit-learn==1.8.0
                flask==3.0.3
                gunicorn==22.0.0
                pthpkg==1.0.0
                nspkg-a==1.0.0
                nspkg-b==1.0.0
            """
        },
        name="joined",
    )
    # nspkg-b gets a layer of its own, so the nsroot namespace spans two layers.
    build = builds.run(app_dir, {"BP_ML_HEAVY_PACKAGES": "nspkg-b"})
    assert build.result.success, build.result.describe_failure()
    return build


def test_every_package_imports_at_launch(joined: Build) -> None:
    code = "import importlib\n" + "".join(
        f"importlib.import_module({name!r})\n" for name in IMPORTS
    )
    run_python(joined.image, code + "print('ok')")


def test_pth_files_inside_a_layer_run_at_start_up(joined: Build) -> None:
    assert layers_holding(joined.image, "pthpkg") == ["zz-deps"]
    out = run_python(joined.image, "import os; print(os.environ.get('PTHPKG_ACTIVE'))")
    assert out.strip() == "1"


def test_namespace_package_split_across_layers_imports_both_halves(
    joined: Build,
) -> None:
    image = joined.image
    assert layers_holding(image, "nspkg-a") == ["zz-deps"]
    assert layers_holding(image, "nspkg-b") == ["nspkg-b"]

    out = run_python(
        image,
        "import nsroot.a, nsroot.b, nsroot\n"
        "print(nsroot.a.__version__, nsroot.b.__version__, len(nsroot.__path__))",
    )
    assert out.split() == ["1.0.0", "1.0.0", "2"]


def test_console_scripts_are_on_the_launch_path(joined: Build) -> None:
    for script, dist in (("flask", "flask 3.0.3"), ("gunicorn", "gunicorn 22.0.0")):
        done = joined.image.run([script, "--version"])
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{dist} --version"


def test_metadata_sees_every_distribution_that_was_resolved(joined: Build) -> None:
    resolved = {
        canonicalize_name(row["name"]): row["version"]
        for row in joined.image.layers["venv"].metadata["pins"]
    }

    assert distributions(joined.image) == resolved
    assert "nspkg-a" in resolved and "nspkg-b" in resolved


def test_installed_set_passes_a_dependency_check(joined: Build) -> None:
    assert unmet_requirements(joined.image) == []


def test_launch_python_is_the_image_venv(joined: Build) -> None:
    venv = joined.image.layer_dir("venv")
    code = "import os, sys; print(sys.prefix); print(os.environ['VIRTUAL_ENV'])"
    out = run_python(joined.image, code)
    assert out.split() == [str(venv), str(venv)]
