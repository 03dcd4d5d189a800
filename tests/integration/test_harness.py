"""The integration fixtures are wired to each other and to this repo's buildpack."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

from support.index import IndexServer
from support.lifecycle import Lifecycle

REPO_ROOT = Path(__file__).resolve().parents[2]
AppFactory = Callable[..., Path]


def test_buildpack_is_this_repo(buildpack: Lifecycle) -> None:
    assert buildpack.buildpack.directory == REPO_ROOT
    assert buildpack.buildpack.api == "0.12"
    assert buildpack.buildpack_layers_dir.name == buildpack.buildpack.escaped_id


def test_builds_point_at_the_stand_in_indexes(
    buildpack: Lifecycle, pypi_index: IndexServer, cpu_index: IndexServer
) -> None:
    env = buildpack.platform_env
    assert env["PIP_INDEX_URL"] == pypi_index.url
    assert env["BP_ML_TORCH_INDEX_URL"] == cpu_index.url
    with urllib.request.urlopen(f"{env['PIP_INDEX_URL']}/uv/", timeout=10) as page:
        assert b"uv-0.13.9-" in page.read()


def test_build_image_has_python_but_not_the_dev_venv(buildpack: Lifecycle) -> None:
    path = buildpack.outer_env["PATH"]
    assert ".venv-dev" not in path and "shims" not in path
    result = subprocess.run(
        ["python3", "-c", "import sys; print(sys.prefix == sys.base_prefix)"],
        env={"PATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "True"


def test_app_factory_writes_dedented_files(app: AppFactory) -> None:
    directory = app({"requirements.txt": "\n    torch==2.13.0\n", "data/x.bin": b"\0"})
    assert (directory / "requirements.txt").read_text() == "\ntorch==2.13.0\n"
    assert (directory / "data" / "x.bin").read_bytes() == b"\0"
    assert isinstance(directory, Path)
