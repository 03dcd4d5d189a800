"""The loopback indexes list, serve, log and guard their wheels."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .fixtures import MakeIndex
from .index import IndexServer
from .wheels import WheelSpec


def _pip_download(index_url: str, dest: Path, *requirements: str) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet",
            "--no-cache-dir", "--isolated",  # ignore the host's pip configuration
            "--index-url", index_url, "--dest", str(dest), *requirements,
        ],
        check=True,
    )  # fmt: skip


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_lists_local_versions(cpu_index: IndexServer) -> None:
    status, page = _get(f"{cpu_index.url}/torch/")
    assert status == 200
    assert "torch-2.13.0+cpu-py3-none-any.whl#sha256=" in page


def test_pip_resolves_pypi_torch_with_its_cuda_wheels(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    pypi_index.clear_log()
    _pip_download(pypi_index.url, tmp_path, "torch==2.13.0")
    downloaded = set(pypi_index.downloads())
    assert "torch-2.13.0-py3-none-any.whl" in downloaded
    assert "nvidia_cublas_cu12-12.4.5.8-py3-none-any.whl" in downloaded
    assert pypi_index.downloaded("typing_extensions") == [
        "typing_extensions-4.12.2-py3-none-any.whl"
    ]


def test_cpu_index_serves_torch_without_cuda_wheels(
    cpu_index: IndexServer, tmp_path: Path
) -> None:
    cpu_index.clear_log()
    _pip_download(cpu_index.url, tmp_path, "torchvision==0.28.0+cpu")
    assert sorted(cpu_index.downloads()) == [
        "filelock-3.99.0-py3-none-any.whl",
        "torch-2.13.0+cpu-py3-none-any.whl",
        "torchvision-0.28.0+cpu-py3-none-any.whl",
        "typing_extensions-4.99.0-py3-none-any.whl",
    ]


def test_pypi_index_carries_the_real_uv_wheel(pypi_index: IndexServer) -> None:
    status, page = _get(f"{pypi_index.url}/uv/")
    assert status == 200
    assert "uv-0.13.9-py3-none-manylinux" in page


def test_private_index_refuses_requests_without_credentials(
    private_pypi_index: IndexServer,
) -> None:
    assert _get(f"{private_pypi_index.url}/")[0] == 401
    assert _get(f"{private_pypi_index.url}/smalldep/")[0] == 401
    wheel = "/packages/smalldep-1.17.0-py3-none-any.whl"
    assert _get(f"http://127.0.0.1:{private_pypi_index.port}{wheel}")[0] == 401


def test_private_index_serves_with_credentials_and_logs_the_user(
    private_pypi_index: IndexServer, tmp_path: Path
) -> None:
    private_pypi_index.clear_log()
    _pip_download(private_pypi_index.url_with_credentials, tmp_path, "smalldep")
    assert (tmp_path / "smalldep-1.17.0-py3-none-any.whl").is_file()
    served = [r for r in private_pypi_index.requests if r.status == 200]
    assert served and all(r.user == "mlbp-user" for r in served)
    assert str(private_pypi_index.password) not in private_pypi_index.url


def test_wrong_password_is_refused(private_pypi_index: IndexServer) -> None:
    url = private_pypi_index.url_with_credentials.replace(
        private_pypi_index.password or "", "wrong"
    )
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--isolated",
                "--no-input", "--no-cache-dir", "--index-url", url, "--dest",
                "/nonexistent-never-written", "smalldep",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip


def test_make_index_serves_a_tests_own_wheels(
    make_index: MakeIndex, tmp_path: Path
) -> None:
    index = make_index([WheelSpec("only-here", "0.1.0")])
    _pip_download(index.url, tmp_path, "only-here")
    assert index.downloads() == ["only_here-0.1.0-py3-none-any.whl"]
