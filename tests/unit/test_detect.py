"""bin/detect: which apps pass, the one-line reason, and the build plan."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlbuildpack import detect as detect_module
from mlbuildpack.detect import DETECT_ERROR, DETECT_FAIL, DETECT_PASS, main
from mlbuildpack.tomlcompat import tomllib


@pytest.fixture
def lifecycle(tmp_path, monkeypatch):
    """Run ``main`` as the lifecycle does: in the app dir, with CNB_* variables set."""
    platform_dir = tmp_path / "platform"
    (platform_dir / "env").mkdir(parents=True)
    plan_path = tmp_path / "plan.toml"
    for name in (
        "BP_ML_FORCE_DETECT",
        "BP_ML_REQUIREMENTS_FILE",
        "BP_ML_TORCH_VARIANT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CNB_PLATFORM_DIR", str(platform_dir))
    monkeypatch.setenv("CNB_BUILD_PLAN_PATH", str(plan_path))

    class Lifecycle:
        platform = platform_dir
        plan = plan_path

        def detect(self, app_dir: Path) -> int:
            monkeypatch.chdir(app_dir)
            return main([])

        def read_plan(self) -> dict:
            return tomllib.loads(plan_path.read_text())

    return Lifecycle()


def output_line(capsys) -> str:
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_torch_app_passes_and_requires_cpython_or_nothing(make_app, lifecycle, capsys):
    app = make_app(
        {
            "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\ntorch==2.3.1\n",
        }
    )

    assert lifecycle.detect(app) == DETECT_PASS

    assert "torch (requirements.txt:3)" in output_line(capsys)
    assert lifecycle.read_plan() == {
        "requires": [{"name": "cpython", "metadata": {"build": True, "launch": True}}],
        "or": [{}],
    }


def test_sentence_transformers_alone_makes_an_ml_app(make_app, lifecycle, capsys):
    # Field case F02: torch only comes in through sentence-transformers.
    app = make_app(
        {
            "requirements.txt": "flask==3.0.3\nsentence-transformers==3.0.1\n",
        }
    )

    assert lifecycle.detect(app) == DETECT_PASS
    assert "sentence-transformers" in output_line(capsys)


def test_flask_app_fails_with_one_line_saying_why(make_app, lifecycle, capsys):
    app = make_app(
        {
            "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\n",
            ".python-version": "3.12\n",
        }
    )

    assert lifecycle.detect(app) == DETECT_FAIL

    line = output_line(capsys)
    assert "No ML package in requirements.txt (" in line
    assert "BP_ML_FORCE_DETECT=true" in line
    assert not lifecycle.plan.exists()


def test_app_without_dependency_files_fails(make_app, lifecycle, capsys):
    app = make_app({"app.py": "print('hello')\n"})

    assert lifecycle.detect(app) == DETECT_FAIL
    assert "No dependency file" in output_line(capsys)


def test_forced_detection_passes_any_app(make_app, lifecycle, monkeypatch, capsys):
    app = make_app({"requirements.txt": "flask==3.0.3\n"})
    monkeypatch.setenv("BP_ML_FORCE_DETECT", "true")

    assert lifecycle.detect(app) == DETECT_PASS
    assert "BP_ML_FORCE_DETECT" in output_line(capsys)


def test_forced_detection_from_the_platform_env_dir(make_app, lifecycle):
    app = make_app({"app.py": ""})
    (lifecycle.platform / "env" / "BP_ML_FORCE_DETECT").write_text("true")

    assert lifecycle.detect(app) == DETECT_PASS


def test_constraints_alone_do_not_make_an_ml_app(make_app, lifecycle):
    app = make_app(
        {
            "requirements.txt": "-c constraints.txt\nflask\n",
            "constraints.txt": "torch==2.3.1\nscikit-learn==1.5.2\n",
        }
    )

    assert lifecycle.detect(app) == DETECT_FAIL


def test_ml_packages_behind_nested_includes_are_found(make_app, lifecycle, capsys):
    # Field case F12.
    app = make_app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": "-r base.txt\ngunicorn==22.0.0\n",
            "requirements/base.txt": "torch==2.3.1\nsentence-transformers==3.0.1\n",
        }
    )

    assert lifecycle.detect(app) == DETECT_PASS
    assert "torch (requirements/base.txt:1)" in output_line(capsys)


def test_unreadable_requirements_pass_so_the_build_reports_them(
    make_app, lifecycle, capsys
):
    app = make_app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": "-r base.txt\ngunicorn==22.0.0\n",
        }
    )

    assert lifecycle.detect(app) == DETECT_PASS

    line = output_line(capsys)
    assert "Included requirements file not found" in line
    assert "requirements/prod.txt:1" in line


def test_invalid_setting_passes_an_ml_app_so_the_build_reports_it(
    make_app, lifecycle, monkeypatch, capsys
):
    app = make_app({"requirements.txt": "torch\n"})
    monkeypatch.setenv("BP_ML_TORCH_VARIANT", "rocm")

    assert lifecycle.detect(app) == DETECT_PASS
    assert "BP_ML_TORCH_VARIANT" in output_line(capsys)


@pytest.mark.parametrize(
    "files", [{"requirements.txt": "flask\n"}, {"package.json": "{}\n"}, {}]
)
def test_invalid_setting_does_not_make_other_apps_ours(
    make_app, lifecycle, monkeypatch, capsys, files
):
    # A bad value set for every app on a platform must not claim them all.
    app = make_app(files)
    monkeypatch.setenv("BP_ML_HEAVY_THRESHOLD_MB", "50MB")

    assert lifecycle.detect(app) == DETECT_FAIL
    assert "not a Python ML app" in output_line(capsys)


def test_locked_ml_package_passes_even_when_transitive(make_app, lifecycle, capsys):
    app = make_app(
        {
            "poetry.lock": """\
            [[package]]
            name = "vision-helper"
            version = "1.0.0"
            groups = ["main"]

            [package.dependencies]
            torch = ">=1.8.0"

            [[package]]
            name = "torch"
            version = "2.6.0"
            groups = ["main"]

            [metadata]
            lock-version = "2.1"
            python-versions = "^3.11"
            content-hash = "0"
            """,
        }
    )

    assert lifecycle.detect(app) == DETECT_PASS
    assert "poetry.lock" in output_line(capsys)


def test_python_version_request_reaches_paketo_cpython(make_app, lifecycle):
    app = make_app({"requirements.txt": "torch\n", ".python-version": "3.12\n"})

    assert lifecycle.detect(app) == DETECT_PASS

    metadata = lifecycle.read_plan()["requires"][0]["metadata"]
    assert metadata["version"] == "3.12.*"
    assert metadata["version-source"] == ".python-version"


def test_requires_python_range_is_written_as_a_semver_range(make_app, lifecycle):
    app = make_app(
        {
            "pyproject.toml": """\
            [project]
            name = "app"
            requires-python = ">=3.10,<3.13"
            dependencies = ["scikit-learn"]
            """,
        }
    )

    assert lifecycle.detect(app) == DETECT_PASS

    metadata = lifecycle.read_plan()["requires"][0]["metadata"]
    assert metadata["version"] == "<3.13, >=3.10"
    assert metadata["version-source"] == "pyproject.toml"


def test_platform_dir_and_plan_path_from_arguments(make_app, tmp_path, monkeypatch):
    app = make_app({"requirements.txt": "torch\n"})
    monkeypatch.delenv("CNB_PLATFORM_DIR", raising=False)
    monkeypatch.delenv("CNB_BUILD_PLAN_PATH", raising=False)
    monkeypatch.delenv("BP_ML_FORCE_DETECT", raising=False)
    (tmp_path / "platform").mkdir()
    monkeypatch.chdir(app)

    assert (
        main([str(tmp_path / "platform"), str(tmp_path / "plan.toml")]) == DETECT_PASS
    )
    assert (tmp_path / "plan.toml").is_file()


def test_a_fault_of_the_buildpack_is_an_error_not_a_traceback(
    make_app, lifecycle, monkeypatch, capsys
):
    app = make_app({"requirements.txt": "torch\n"})

    def broken(*_args):
        raise KeyError("oops")

    monkeypatch.setattr(detect_module, "read_declaration", broken)

    assert lifecycle.detect(app) == DETECT_ERROR
    assert "buildpack fault" in output_line(capsys)


def test_detection_reads_a_large_app_in_well_under_a_second(make_app, lifecycle):
    many = "".join(f"package-{n}=={n}.0\n" for n in range(500))
    app = make_app({"requirements.txt": many + "torch==2.3.1\n"})

    started = time.monotonic()
    assert lifecycle.detect(app) == DETECT_PASS
    assert time.monotonic() - started < 1.0
