"""How the build finds a pip to install uv with, quickest first."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mlbuildpack import uvtool
from mlbuildpack.output import Log


def test_the_interpreters_own_pip_is_used_when_it_has_one(tmp_path: Path) -> None:
    if importlib.util.find_spec("pip") is None:
        pytest.skip("this interpreter has no pip")

    command = uvtool._pip_command(tmp_path, {}, Log())

    assert command == [sys.executable, "-m", "pip"]
    assert list(tmp_path.iterdir()) == []  # no venv made


def test_without_pip_the_bundled_wheel_is_run_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "python-wheels"
    wheels.mkdir()
    (wheels / "pip-23.0.1-py3-none-any.whl").write_bytes(b"")
    (wheels / "setuptools-66.1.1-py3-none-any.whl").write_bytes(b"")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: None if name in ("pip", "ensurepip") else real_find_spec(name),
    )
    real_config_var = sysconfig.get_config_var
    monkeypatch.setattr(
        sysconfig,
        "get_config_var",
        lambda name: str(wheels) if name == "WHEEL_PKG_DIR" else real_config_var(name),
    )

    command = uvtool._pip_command(tmp_path / "tmp", {}, Log())

    wheel = wheels / "pip-23.0.1-py3-none-any.whl"
    assert command == [sys.executable, str(wheel / "pip")]


def test_a_bundled_pip_wheel_runs_as_pip() -> None:
    wheel = uvtool._bundled_pip_wheel()
    if wheel is None:
        pytest.skip("this interpreter bundles no pip wheel")

    done = subprocess.run(
        [sys.executable, str(wheel / "pip"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pip ")
    assert str(wheel) in done.stdout
