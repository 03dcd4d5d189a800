"""The torch family comes from the CPU index, whether declared or pulled in.

Field cases F01 (a direct ``torch`` pin), F02 (torch only through
sentence-transformers), F04 (an unpinned torchvision next to a pinned torch) and F27
(every substitution is logged; BP_ML_TORCH_VARIANT=as-declared opts out).
"""

from __future__ import annotations

import pytest
from buildkit import AppFactory, Build, Builds
from image_checks import (
    cuda_files,
    cuda_names,
    distributions,
    layers_holding,
    log_lines,
    run_python,
    unmet_requirements,
)

FLASK_APP = """\
from flask import Flask

app = Flask(__name__)
"""

TORCH_VERSION = "import torch; print(torch.__version__, torch.version.cuda)"


@pytest.fixture(scope="module")
def direct_torch(builds: Builds, module_app: AppFactory) -> Build:
    """F01: flask, gunicorn and a plain ``torch==2.13.0`` pin."""
    app_dir = module_app(
        {
            "requirements.txt": """\
                flask==3.0.3
                gunicorn==22.0.0
                torch==2.13.0
            """,
            "app.py": FLASK_APP,
            "Procfile": "web: gunicorn app:app\n",
        },
        name="direct-torch",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


@pytest.fixture(scope="module")
def through_sentence_transformers(builds: Builds, module_app: AppFactory) -> Build:
    """F02: no torch line; sentence-transformers needs ``torch>=2.0``."""
    app_dir = module_app(
        {
            "requirements.txt": """\
                flask==3.0.3
                gunicorn==22.0.0
                sentence-transformers==5.0.0
            """,
            "app.py": FLASK_APP,
        },
        name="sentence-transformers",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


F27_REQUIREMENTS = """\
torch==2.13.0
torchvision==0.28.0
flask==3.0.3
"""


@pytest.fixture(scope="module")
def torch_and_torchvision(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app({"requirements.txt": F27_REQUIREMENTS}, name="f27")
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


@pytest.fixture(scope="module")
def as_declared(
    builds: Builds, module_app: AppFactory, torch_and_torchvision: Build
) -> Build:
    """The same app rebuilt with the opt-out over its CPU image."""
    app_dir = module_app({"requirements.txt": F27_REQUIREMENTS}, name="f27-opt-out")
    build = builds.run(
        app_dir, {"BP_ML_TORCH_VARIANT": "as-declared"}, previous=torch_and_torchvision
    )
    assert build.result.success, build.result.describe_failure()
    return build


# --- F01: torch==2.13.0 ------------------------------------------------------------


def test_direct_torch_pin_installs_the_cpu_build(direct_torch: Build) -> None:
    assert run_python(direct_torch.image, TORCH_VERSION).split() == [
        "2.13.0+cpu",
        "None",
    ]


def test_direct_torch_pin_installs_no_cuda_distribution(direct_torch: Build) -> None:
    assert cuda_names(distributions(direct_torch.image)) == []
    assert cuda_files(direct_torch.pypi_downloads + direct_torch.cpu_downloads) == []


def test_direct_torch_pin_downloads_torch_once_from_the_cpu_index_only(
    direct_torch: Build,
) -> None:
    assert [f for f in direct_torch.pypi_downloads if f.startswith("torch-")] == []
    assert direct_torch.cpu_downloads == ["torch-2.13.0+cpu-py3-none-any.whl"]


def test_dependencies_of_torch_come_from_pypi_not_the_torch_index(
    direct_torch: Build,
) -> None:
    # The CPU index stand-in carries filelock 3.99.0 and typing-extensions 4.99.0.
    installed = distributions(direct_torch.image)

    assert installed["filelock"] == "3.16.1"
    assert installed["typing-extensions"] == "4.12.2"


def test_log_says_torch_came_from_the_cpu_index_and_names_the_opt_out(
    direct_torch: Build,
) -> None:
    output = direct_torch.output

    assert log_lines(output, r"torch==2\.13\.0 .*-> 2\.13\.0\+cpu from the CPU index")
    assert "BP_ML_TORCH_VARIANT=as-declared" in output


def test_torch_is_in_the_torch_layer_and_the_rest_in_deps(direct_torch: Build) -> None:
    image = direct_torch.image

    assert layers_holding(image, "torch") == ["torch"]
    for name in ("flask", "gunicorn", "filelock", "typing-extensions"):
        assert layers_holding(image, name) == ["zz-deps"], name


def test_direct_torch_app_passes_a_dependency_check(direct_torch: Build) -> None:
    assert unmet_requirements(direct_torch.image) == []


# --- F02: torch through sentence-transformers ----------------------------------------


def test_torch_through_another_package_is_the_cpu_build(
    through_sentence_transformers: Build,
) -> None:
    image = through_sentence_transformers.image

    assert run_python(image, TORCH_VERSION).split() == ["2.13.0+cpu", "None"]
    assert layers_holding(image, "torch") == ["torch"]


def test_torch_through_another_package_brings_no_cuda_distribution(
    through_sentence_transformers: Build,
) -> None:
    build = through_sentence_transformers

    assert cuda_names(distributions(build.image)) == []
    # The first pass only reads metadata; no CUDA wheel may be downloaded in full.
    assert cuda_files(build.pypi_downloads + build.cpu_downloads) == []
    assert [f for f in build.pypi_downloads if f.startswith("torch-")] == []


def test_the_app_imports_sentence_transformers(
    through_sentence_transformers: Build,
) -> None:
    image = through_sentence_transformers.image

    out = run_python(image, "import sentence_transformers as s; print(s.__version__)")
    assert out.strip() == "5.0.0"
    assert unmet_requirements(image) == []


def test_log_names_the_package_that_pulled_torch_and_the_opt_out(
    through_sentence_transformers: Build,
) -> None:
    output = through_sentence_transformers.output

    assert log_lines(output, r"torch is reached through sentence-transformers")
    assert log_lines(output, r"torch .*-> 2\.13\.0\+cpu from the CPU index")
    assert "BP_ML_TORCH_VARIANT=as-declared" in output


# --- F27: explicit substitution, and the opt-out --------------------------------------


def test_each_substitution_is_logged_from_declared_to_installed(
    torch_and_torchvision: Build,
) -> None:
    output = torch_and_torchvision.output

    assert log_lines(
        output, r"torch==2\.13\.0 \(requirements\.txt:1\) -> 2\.13\.0\+cpu"
    )
    assert log_lines(
        output, r"torchvision==0\.28\.0 \(requirements\.txt:2\) -> 0\.28\.0\+cpu"
    )
    installed = distributions(torch_and_torchvision.image)
    assert (installed["torch"], installed["torchvision"]) == (
        "2.13.0+cpu",
        "0.28.0+cpu",
    )


def test_as_declared_installs_exactly_what_the_files_say(as_declared: Build) -> None:
    installed = distributions(as_declared.image)

    assert (installed["torch"], installed["torchvision"]) == ("2.13.0", "0.28.0")
    assert cuda_names(installed) == [
        "nvidia-cublas-cu12",
        "nvidia-cudnn-cu12",
        "triton",
    ]
    assert run_python(as_declared.image, TORCH_VERSION).split() == ["2.13.0", "12.4"]
    assert unmet_requirements(as_declared.image) == []


def test_switching_to_as_declared_reinstalls_the_torch_layer(
    as_declared: Build,
) -> None:
    assert as_declared.image.layers["torch"].status == "new"
    assert log_lines(
        as_declared.output, r"torch changed from 2\.13\.0\+cpu to 2\.13\.0"
    )
    assert layers_holding(as_declared.image, "nvidia-cudnn-cu12") == ["torch-cuda"]


def test_as_declared_never_asks_the_cpu_index(as_declared: Build) -> None:
    assert as_declared.cpu_requests == []
    assert "torch-2.13.0-py3-none-any.whl" in as_declared.pypi_downloads
    assert not log_lines(as_declared.output, r"-> .*\+cpu")


# --- F04: an unpinned torchvision next to a pinned torch ------------------------------


@pytest.fixture(scope="module")
def held_torch(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {"requirements.txt": "torch==2.12.0\ntorchvision\nsmalldep\n"}, name="f04"
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


def test_unpinned_torchvision_matches_the_pinned_torch(held_torch: Build) -> None:
    installed = distributions(held_torch.image)

    assert installed["torch"] == "2.12.0+cpu"
    assert installed["torchvision"] == "0.27.0+cpu"
    assert layers_holding(held_torch.image, "torchvision") == ["torch"]
    assert unmet_requirements(held_torch.image) == []


def test_pinned_torch_is_fetched_once_and_never_replaced(held_torch: Build) -> None:
    torch_files = [
        f
        for f in held_torch.pypi_downloads + held_torch.cpu_downloads
        if f.startswith("torch-")
    ]

    assert torch_files == ["torch-2.12.0+cpu-py3-none-any.whl"]
    assert cuda_names(distributions(held_torch.image)) == []
