"""Index and find-links lines in requirements.txt that point at a PyTorch index.

pip applies such a line to every package; the buildpack scopes it to the torch
family, so everything else, torch's own dependencies included, still comes from the
app's package index (field cases F09 and F06).

The CPU-index stand-in carries filelock 3.99.0 and typing-extensions 4.99.0, newer
than PyPI's 3.16.1 and 4.12.2: a dependency fetched from the wrong index shows up as
the wrong version. Apps that name the real download.pytorch.org get a dead HTTPS
proxy, so a build that tried to reach it would fail instead of going online.
"""

from __future__ import annotations

import pytest
from buildkit import AppFactory, Build, Builds
from image_checks import cuda_files, cuda_names, distributions, log_lines, run_python
from support.index import IndexServer

NO_INTERNET = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
TORCH_STABLE = "https://download.pytorch.org/whl/torch_stable.html"


def assert_torch_scoped(build: Build) -> None:
    """torch is the CPU build; flask and torch's dependencies come from PyPI."""
    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert installed["torch"] == "2.13.0+cpu"
    assert installed["flask"] == "3.0.3"
    assert installed["filelock"] == "3.16.1"
    assert installed["typing-extensions"] == "4.12.2"
    assert build.cpu_downloads == ["torch-2.13.0+cpu-py3-none-any.whl"]
    assert cuda_names(installed) == []


@pytest.fixture(scope="module")
def index_url_line(
    builds: Builds, module_app: AppFactory, cpu_index: IndexServer
) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": f"""\
                --index-url {cpu_index.url}
                torch==2.13.0
                flask==3.0.3
                scikit-learn
            """
        },
        name="index-url",
    )
    return builds.run(app_dir)


def test_index_url_line_is_scoped_to_the_torch_family(index_url_line: Build) -> None:
    assert_torch_scoped(index_url_line)
    assert distributions(index_url_line.image)["scikit-learn"] == "1.8.0"


def test_log_says_the_index_line_was_scoped(
    index_url_line: Build, cpu_index: IndexServer
) -> None:
    assert log_lines(
        index_url_line.output,
        rf"index line {cpu_index.url} is used for torch, torchvision and "
        r"torchaudio only",
    )


def test_extra_index_url_line_is_scoped_to_the_torch_family(
    builds: Builds, app: AppFactory, cpu_index: IndexServer
) -> None:
    app_dir = app(
        {
            "requirements.txt": f"""\
                --extra-index-url {cpu_index.url}
                torch==2.13.0
                flask==3.0.3
            """
        }
    )

    build = builds.run(app_dir)

    assert_torch_scoped(build)
    assert log_lines(build.output, rf"index line {cpu_index.url} is used for torch")


def test_the_real_pytorch_index_line_is_scoped_and_never_contacted(
    builds: Builds, app: AppFactory
) -> None:
    # F09 as reported: the public CPU index at the top of the file.
    app_dir = app(
        {
            "requirements.txt": """\
                --index-url https://download.pytorch.org/whl/cpu
                torch==2.13.0
                flask==3.0.3
            """
        }
    )

    build = builds.run(app_dir, NO_INTERNET)

    assert_torch_scoped(build)
    assert log_lines(
        build.output, r"index line https://download\.pytorch\.org/whl/cpu is used for"
    )


def test_torch_stable_find_links_with_cpu_pins_builds(
    builds: Builds, app: AppFactory
) -> None:
    # F06 variant A: the flat torch_stable.html page and +cpu pins.
    app_dir = app(
        {
            "requirements.txt": f"""\
                -f {TORCH_STABLE}
                torch==2.13.0+cpu
                torchvision==0.28.0+cpu
                flask==3.0.3
            """
        }
    )

    build = builds.run(app_dir, NO_INTERNET)

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert (installed["torch"], installed["torchvision"]) == (
        "2.13.0+cpu",
        "0.28.0+cpu",
    )
    assert installed["filelock"] == "3.16.1"
    assert cuda_names(installed) == []
    assert log_lines(build.output, rf"index line {TORCH_STABLE} is used for torch")
    out = run_python(build.image, "import torchvision; print(torchvision.__version__)")
    assert out.strip() == "0.28.0+cpu"


@pytest.fixture(scope="module")
def missing_cpu_pin(builds: Builds, module_app: AppFactory) -> Build:
    """F06 variant B: per-line -f (which pip drops) and a +cpu version too old for
    this Python; the CPU index has no 1.8.1."""
    app_dir = module_app(
        {
            "requirements.txt": f"""\
                torch==1.8.1+cpu -f {TORCH_STABLE}
                torchvision==0.9.1+cpu -f {TORCH_STABLE}
                flask==3.0.3
            """
        },
        name="missing-cpu-pin",
    )
    return builds.run(app_dir, NO_INTERNET)


def test_cpu_pin_the_cpu_index_lacks_fails_naming_the_pin(
    missing_cpu_pin: Build,
) -> None:
    build = missing_cpu_pin

    assert not build.result.success
    output = build.output
    assert "[Error:" in output
    assert "torch==1.8.1+cpu" in output
    assert "requirements.txt:1" in output
    # No CUDA torch (nor any torch) was fetched to make up for the missing pin.
    downloads = build.pypi_downloads + build.cpu_downloads
    assert [f for f in downloads if f.startswith("torch")] == []
    assert cuda_files(downloads) == []


def test_cpu_pin_the_cpu_index_lacks_is_explained_in_the_apps_terms(
    missing_cpu_pin: Build, build_python: dict[str, str]
) -> None:
    # F06: the message names the Python the pin has no build for, and speaks of
    # the app's files, not of the project the buildpack generates to route torch.
    error = missing_cpu_pin.output.split("[Error:", 1)[1]

    assert f"Python {build_python['minor']}" in error
    assert "torch-routing" not in error


def test_uv_s_own_index_variables_are_honoured_and_torch_s_stays_scoped(
    builds: Builds, app: AppFactory, pypi_index: IndexServer, cpu_index: IndexServer
) -> None:
    # Without PIP_INDEX_URL and with the internet closed, only UV_DEFAULT_INDEX can
    # serve flask; the CPU index named in UV_INDEX must serve torch alone.
    app_dir = app({"requirements.txt": "torch==2.13.0\nflask==3.0.3\n"})

    build = builds.run(
        app_dir,
        {
            "PIP_INDEX_URL": None,
            "UV_DEFAULT_INDEX": pypi_index.url,
            "UV_INDEX": f"cpu={cpu_index.url}",
            **NO_INTERNET,
        },
    )

    assert_torch_scoped(build)


def test_trusted_hosts_reach_uv_as_insecure_hosts(
    builds: Builds, app: AppFactory
) -> None:
    app_dir = app(
        {"requirements.txt": "--trusted-host 127.0.0.1\ntorch==2.13.0\nflask==3.0.3\n"}
    )

    build = builds.run(
        app_dir, {"BP_ML_DEBUG": "true", "PIP_TRUSTED_HOST": "mirror.example"}
    )

    assert_torch_scoped(build)
    uv_calls = log_lines(build.output, r"debug: uv pip (compile|install)")
    assert uv_calls
    for call in uv_calls:
        assert "--allow-insecure-host 127.0.0.1" in call, call
        assert "--allow-insecure-host mirror.example" in call, call
