"""Detection through the emulated lifecycle: which apps the buildpack claims, the
one line it prints, and the plan the lifecycle resolves from what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildkit import REPO_ROOT, AppFactory
from support.index import IndexServer
from support.lifecycle import Lifecycle

DETECT_FAIL = 100


def test_torch_app_passes_naming_the_package_and_line(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    app_dir = app({"requirements.txt": "flask==3.0.3\ntorch==2.13.0\n"})

    result = buildpack.run_detect(app_dir)

    assert result.passed, result.output
    assert (
        result.output.strip()
        == "ML packages in requirements.txt: torch (requirements.txt:2)"
    )
    # Alone in its group, the alternative that requires nothing is chosen.
    assert result.entries == []


def test_plan_asks_a_cpython_provider_for_the_requested_python(
    tmp_path: Path,
    build_image_env: dict[str, str],
    build_env: dict[str, str],
    app: AppFactory,
) -> None:
    after_cpython = Lifecycle(
        REPO_ROOT,
        tmp_path / "cnb-after-cpython",
        outer_env=build_image_env,
        platform_env=build_env,
        earlier_provides=["cpython"],
    )
    app_dir = app({"requirements.txt": "torch==2.13.0\n", ".python-version": "3.12\n"})

    result = after_cpython.run_detect(app_dir)

    # cpython's own build gets the requirement (with the version the app asks for);
    # this buildpack provides nothing, so its own plan entries stay empty.
    assert result.passed, result.output
    assert result.plan["requires"] == [
        {
            "name": "cpython",
            "metadata": {
                "build": True,
                "launch": True,
                "version": "3.12.*",
                "version-source": ".python-version",
            },
        }
    ]
    assert result.entries == []


def test_web_app_without_ml_packages_is_left_to_other_buildpacks(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    app_dir = app({"requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\n"})

    result = buildpack.run_detect(app_dir)

    assert result.exit_code == DETECT_FAIL
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "No ML package in requirements.txt" in lines[0]
    assert "BP_ML_FORCE_DETECT=true" in lines[0]


def test_app_without_dependency_files_fails(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    result = buildpack.run_detect(app({"main.py": "print('hi')\n"}))

    assert result.exit_code == DETECT_FAIL
    assert "No dependency file" in result.output


def test_forced_detection_from_the_platform_env(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    app_dir = app({"requirements.txt": "flask==3.0.3\n"})

    result = buildpack.run_detect(app_dir, {"BP_ML_FORCE_DETECT": "true"})

    assert result.passed, result.output


def test_ml_packages_behind_nested_includes_are_found(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    # F12: the top-level file only includes another, which includes a third.
    app_dir = app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": "-r base.txt\ngunicorn==22.0.0\n",
            "requirements/base.txt": "torch==2.13.0\nsentence-transformers==5.0.0\n",
        }
    )

    result = buildpack.run_detect(app_dir)

    assert result.passed, result.output
    assert "torch (requirements/base.txt:1)" in result.output
    assert "sentence-transformers (requirements/base.txt:2)" in result.output


def test_ml_package_only_in_constraints_does_not_count(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    app_dir = app(
        {
            "requirements.txt": "-c constraints.txt\nflask\n",
            "constraints.txt": "flask==3.0.3\ntorch==2.13.0\n",
        }
    )

    assert buildpack.run_detect(app_dir).exit_code == DETECT_FAIL


@pytest.mark.parametrize(
    ("files", "found"),
    [
        (
            {
                "pyproject.toml": (
                    '[project]\nname = "svc"\nversion = "0"\n'
                    'dependencies = ["scikit-learn>=1.5"]\n'
                )
            },
            "scikit-learn (pyproject.toml:4)",
        ),
        (
            {
                "Pipfile.lock": json.dumps(
                    {"_meta": {}, "default": {"torch": {"version": "==2.13.0"}}},
                    indent=4,
                )
            },
            "torch (Pipfile.lock:4)",
        ),
    ],
    ids=["pyproject", "pipfile-lock"],
)
def test_other_dependency_files_are_read(
    buildpack: Lifecycle, app: AppFactory, files: dict, found: str
) -> None:
    result = buildpack.run_detect(app(files))

    assert result.passed, result.output
    assert found in result.output


def test_unreadable_requirements_pass_so_the_build_can_explain(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    app_dir = app({"requirements.txt": "-r missing.txt\n"})

    result = buildpack.run_detect(app_dir)

    assert result.passed, result.output
    assert "Passing so that the build reports" in result.output
    assert "requirements.txt:1" in result.output


def test_detection_never_touches_an_index(
    buildpack: Lifecycle,
    app: AppFactory,
    pypi_index: IndexServer,
    cpu_index: IndexServer,
) -> None:
    app_dir = app({"requirements.txt": "sentence-transformers\n"})

    assert buildpack.run_detect(app_dir).passed
    assert pypi_index.requests == [] and cpu_index.requests == []


@pytest.mark.parametrize("line", ["-e .", "."])
def test_ml_dependencies_of_the_app_installed_from_its_own_directory_are_found(
    buildpack: Lifecycle, app: AppFactory, line: str
) -> None:
    # requirements.txt installs the app itself; its pyproject.toml names torch.
    app_dir = app(
        {
            "requirements.txt": f"{line}\n",
            "pyproject.toml": """\
                [project]
                name = "svc"
                version = "0.1.0"
                dependencies = ["flask==3.0.3", "torch==2.13.0"]
            """,
        }
    )

    result = buildpack.run_detect(app_dir)

    assert result.passed, result.output
    assert "torch (pyproject.toml:4)" in result.output


def test_utf16_requirements_from_windows_powershell_are_read(
    buildpack: Lifecycle, app: AppFactory
) -> None:
    # `pip freeze > requirements.txt` in Windows PowerShell writes UTF-16 with a BOM,
    # which pip reads.
    text = "flask==3.0.3\r\ntorch==2.13.0\r\n"
    app_dir = app({"requirements.txt": text.encode("utf-16")})

    result = buildpack.run_detect(app_dir)

    assert result.passed, result.output
    assert "torch (requirements.txt:2)" in result.output
