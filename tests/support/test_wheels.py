"""The wheel factory makes wheels that pip installs and Python imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .wheels import WheelFactory, WheelSpec, cpu_index_wheels, pypi_wheels

SPECS = [
    WheelSpec("demo-tool", "1.2.3", requires=("smalldep",), scripts=("demo-tool",)),
    WheelSpec("smalldep", "1.17.0", payload_mb=0.5),
    WheelSpec("nspkg-a", "1.0.0", namespace="nsroot", module="a"),
    WheelSpec("nspkg-b", "1.0.0", namespace="nsroot", module="b"),
    WheelSpec("pthpkg", "1.0.0", pth='import os; os.environ["PTHPKG_ACTIVE"] = "1"\n'),
    WheelSpec(
        "marked",
        "0.1.0",
        requires=('triton==3.3.0; platform_system == "Linux"', "filelock>=3"),
    ),
]


@pytest.fixture
def installed(wheel_factory: WheelFactory, tmp_path: Path) -> Path:
    """A venv with SPECS installed by pip from a find-links directory."""
    wheels = tmp_path / "wheels"
    wheel_factory.populate(wheels, SPECS)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
            "install", "--quiet", "--no-index", "--find-links", str(wheels),
            "--no-deps", *(f"{s.name}=={s.version}" for s in SPECS),
        ],
        check=True,
    )  # fmt: skip
    return venv


def _python(venv: Path, code: str) -> str:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def test_module_imports_and_knows_its_version(installed: Path) -> None:
    assert (
        _python(installed, "import demo_tool; print(demo_tool.__version__)") == "1.2.3"
    )


def test_console_script_runs_module_main(installed: Path) -> None:
    result = subprocess.run(
        [str(installed / "bin" / "demo-tool"), "hello"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "demo-tool 1.2.3 hello"


def test_namespace_packages_share_a_root(installed: Path) -> None:
    code = (
        "import nsroot.a, nsroot.b; print(nsroot.a.__version__, nsroot.b.DISTRIBUTION)"
    )
    assert _python(installed, code) == "1.0.0 nspkg-b"


def test_pth_file_runs_at_startup(installed: Path) -> None:
    assert _python(installed, "import os; print(os.environ['PTHPKG_ACTIVE'])") == "1"


def test_requires_dist_keeps_markers(installed: Path) -> None:
    code = (
        "import importlib.metadata as m, json; print(json.dumps(m.requires('marked')))"
    )
    assert json.loads(_python(installed, code)) == [
        'triton==3.3.0; platform_system == "Linux"',
        "filelock>=3",
    ]


def test_payload_has_the_asked_size(installed: Path) -> None:
    code = (
        "import smalldep, os; "
        "print(os.path.getsize(smalldep.__path__[0] + '/_payload.bin'))"
    )
    assert _python(installed, code) == str(512 * 1024)


def test_same_spec_gives_same_bytes(tmp_path: Path) -> None:
    spec = WheelSpec("repeatable", "1.0", payload_mb=0.1)
    first = WheelFactory(tmp_path / "one").build(spec)
    second = WheelFactory(tmp_path / "two").build(spec)
    assert first.read_bytes() == second.read_bytes()
    assert first.name == "repeatable-1.0-py3-none-any.whl"


def test_built_wheels_are_reused_from_disk(tmp_path: Path) -> None:
    spec = WheelSpec("cached", "1.0")
    path = WheelFactory(tmp_path).build(spec)
    mtime = path.stat().st_mtime_ns
    assert WheelFactory(tmp_path).build(spec) == path
    assert path.stat().st_mtime_ns == mtime


def test_pypi_torch_pulls_cuda_wheels_and_cpu_torch_does_not() -> None:
    pypi = {(s.name, s.version): s for s in pypi_wheels()}
    cpu = {(s.name, s.version): s for s in cpu_index_wheels()}
    assert any(
        r.startswith("nvidia-cublas-cu12") for r in pypi["torch", "2.13.0"].requires
    )
    assert any(r.startswith("triton") for r in pypi["torch", "2.12.0"].requires)
    assert not any(
        "nvidia" in r or "triton" in r for r in cpu["torch", "2.13.0+cpu"].requires
    )
    assert cpu["torchvision", "0.28.0+cpu"].requires == ("torch==2.13.0",)
