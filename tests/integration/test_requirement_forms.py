"""Requirements written in the forms pip reads: constraints, nested includes, VCS
URLs, local wheels and markers (field cases F11, F12, F25)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from buildkit import AppFactory, Build, Builds, in_tree_project, write_files
from image_checks import (
    cuda_names,
    distributions,
    layer_pins,
    layers_holding,
    log_lines,
    run_python,
    unmet_requirements,
)
from support.index import IndexServer
from support.wheels import WheelFactory, WheelSpec, pypi_wheels

# --- F11: -c constraints.txt ----------------------------------------------------------


@pytest.fixture(scope="module")
def constrained(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": """\
                -c constraints.txt
                flask
                scikit-learn
            """,
            "constraints.txt": """\
                flask==3.0.3
                scikit-learn==1.8.0
                numpy==2.3.0
                scipy==1.16.0
                smalldep==1.17.0
            """,
        },
        name="constraints",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


def test_constraints_pin_packages_in_their_own_heavy_layers(constrained: Build) -> None:
    # numpy 2.3.1 is the newest on the index; the constraint holds it at 2.3.0.
    image = constrained.image

    assert distributions(image)["numpy"] == "2.3.0"
    assert layer_pins(image, "numpy") == ["numpy==2.3.0"]
    assert layers_holding(image, "numpy") == ["numpy"]
    assert layer_pins(image, "scipy") == ["scipy==1.16.0"]
    assert constrained.pypi_downloads.count("numpy-2.3.0-py3-none-any.whl") >= 1
    assert not [f for f in constrained.pypi_downloads if f.startswith("numpy-2.3.1")]


def test_constraint_only_packages_are_not_installed(constrained: Build) -> None:
    assert "smalldep" not in distributions(constrained.image)
    assert not [f for f in constrained.pypi_downloads if f.startswith("smalldep")]


# --- F12: nested -r includes ----------------------------------------------------------


@pytest.fixture(scope="module")
def nested_includes(builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": "-r base.txt\ngunicorn==22.0.0\n",
            "requirements/base.txt": "torch==2.13.0\nsentence-transformers==5.0.0\n",
        },
        name="nested-includes",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build


def test_packages_two_includes_deep_are_detected(nested_includes: Build) -> None:
    detect_output = nested_includes.result.detect.output

    assert "torch (requirements/base.txt:1)" in detect_output
    assert "sentence-transformers (requirements/base.txt:2)" in detect_output


def test_torch_two_includes_deep_is_the_cpu_build_in_its_layer(
    nested_includes: Build,
) -> None:
    image = nested_includes.image
    installed = distributions(image)

    assert installed["torch"] == "2.13.0+cpu"
    assert cuda_names(installed) == []
    assert layers_holding(image, "torch") == ["torch"]
    assert layers_holding(image, "gunicorn") == ["zz-deps"]
    assert log_lines(
        nested_includes.output,
        r"torch==2\.13\.0 \(requirements/base\.txt:1\) -> 2\.13\.0\+cpu",
    )
    assert unmet_requirements(image) == []


# --- F25: a VCS requirement -----------------------------------------------------------


def make_git_repo(directory: Path) -> str:
    """Create a git repository holding the ``vcspkg`` project; return the commit."""
    write_files(directory, in_tree_project("vcspkg", "0.1.0", 'FROM = "git"\n'))

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=directory,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    git("init", "--quiet", "--initial-branch", "main")
    git("add", ".")
    git("commit", "--quiet", "-m", "vcspkg 0.1.0")
    git("tag", "v0.1.0")
    return git("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def git_file_requirement(
    builds: Builds, module_app: AppFactory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Build, str]:
    repo = tmp_path_factory.mktemp("vcspkg-repo")
    commit = make_git_repo(repo)
    app_dir = module_app(
        {
            "requirements.txt": f"""\
                flask==3.0.3
                torch==2.13.0
                vcspkg @ git+{repo.as_uri()}@v0.1.0
            """
        },
        name="git-file",
    )
    build = builds.run(app_dir)
    assert build.result.success, build.result.describe_failure()
    return build, commit


def test_git_requirement_is_built_into_the_deps_layer(
    git_file_requirement: tuple[Build, str],
) -> None:
    build, _ = git_file_requirement
    image = build.image

    assert layers_holding(image, "vcspkg") == ["zz-deps"]
    assert run_python(image, "import vcspkg; print(vcspkg.FROM)").strip() == "git"
    installed = distributions(image)
    assert installed["torch"] == "2.13.0+cpu"
    assert cuda_names(installed) == []


def test_git_requirement_is_pinned_to_its_commit(
    git_file_requirement: tuple[Build, str],
) -> None:
    build, commit = git_file_requirement

    vcs_pins = [p for p in layer_pins(build.image, "zz-deps") if "vcspkg" in p]
    assert len(vcs_pins) == 1 and commit in vcs_pins[0], vcs_pins


def test_an_editable_git_requirement_is_installed_from_its_commit(
    builds: Builds, app: AppFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # pip clones `-e git+...` into src/; uv refuses editable VCS sources.
    repo = tmp_path_factory.mktemp("vcspkg-editable")
    commit = make_git_repo(repo)
    app_dir = app(
        {
            "requirements.txt": f"""\
                torch==2.13.0
                -e git+{repo.as_uri()}@v0.1.0#egg=vcspkg
            """
        }
    )

    build = builds.run(app_dir)

    assert build.result.success, build.result.describe_failure()
    assert run_python(build.image, "import vcspkg; print(vcspkg.FROM)").strip() == "git"
    vcs_pins = [p for p in layer_pins(build.image, "zz-deps") if "vcspkg" in p]
    assert len(vcs_pins) == 1 and commit in vcs_pins[0], vcs_pins


# --- Local wheels and markers ---------------------------------------------------------


def test_local_wheel_and_marker_forms(
    builds: Builds, app: AppFactory, wheel_factory: WheelFactory
) -> None:
    local = wheel_factory.build(WheelSpec("localpkg", "1.0.0"))
    app_dir = app(
        {
            "requirements.txt": f"""\
                scikit-learn==1.8.0
                ./wheels/{local.name}
                smalldep==1.17.0 ; python_version < "3"
                flask[async]==3.0.3 ; python_version >= "3"
            """,
            f"wheels/{local.name}": local.read_bytes(),
        }
    )

    build = builds.run(app_dir)

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert installed["localpkg"] == "1.0.0"
    assert installed["flask"] == "3.0.3"
    assert "smalldep" not in installed
    assert layers_holding(build.image, "localpkg") == ["zz-deps"]


# --- Hash-checking mode ---------------------------------------------------------------


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashed_requirements(index_root: Path, wrong: str | None = None) -> str:
    """A pip-compile --generate-hashes style file; ``wrong`` gets a bad hash."""
    wheels = {
        "flask==3.0.3": "flask-3.0.3-py3-none-any.whl",
        "smalldep==1.17.0": "smalldep-1.17.0-py3-none-any.whl",
        "scikit-learn==1.8.0": "scikit_learn-1.8.0-py3-none-any.whl",
        "scipy==1.16.0": "scipy-1.16.0-py3-none-any.whl",
        "numpy==2.3.1": "numpy-2.3.1-py3-none-any.whl",
    }
    lines = []
    for pin, filename in wheels.items():
        digest = sha256_of(index_root / filename)
        if pin.split("==")[0] == wrong:
            digest = hashlib.sha256(b"not this wheel").hexdigest()
        lines.append(f"{pin} \\\n    --hash=sha256:{digest}\n")
    return "".join(lines)


def test_hashed_requirements_build(
    builds: Builds, app: AppFactory, pypi_index: IndexServer
) -> None:
    app_dir = app({"requirements.txt": hashed_requirements(pypi_index.root)})

    build = builds.run(app_dir)

    assert build.result.success, build.result.describe_failure()
    assert distributions(build.image)["smalldep"] == "1.17.0"


def test_a_wheel_that_does_not_match_its_pinned_hash_is_refused(
    builds: Builds, app: AppFactory, pypi_index: IndexServer
) -> None:
    # pip turns on hash checking as soon as one requirement carries a hash, and then
    # refuses any file whose digest differs from the pinned one.
    requirements = hashed_requirements(pypi_index.root, wrong="smalldep")
    app_dir = app({"requirements.txt": requirements})

    build = builds.run(app_dir)

    assert not build.result.success
    assert "smalldep" in build.output.split("[Error:", 1)[-1]


# --- Vendored wheels ------------------------------------------------------------------


def test_no_index_with_vendored_wheels_never_asks_an_index(
    builds: Builds, app: AppFactory, wheel_factory: WheelFactory
) -> None:
    local = wheel_factory.build(WheelSpec("localpkg", "1.0.0"))
    small = pypi_index_wheel(wheel_factory, "smalldep")
    app_dir = app(
        {
            "requirements.txt": "--no-index\n-f ./wheels\nlocalpkg==1.0.0\nsmalldep\n",
            f"wheels/{local.name}": local.read_bytes(),
            f"wheels/{small.name}": small.read_bytes(),
        }
    )

    build = builds.run(app_dir, {"BP_ML_FORCE_DETECT": "true"})

    assert build.result.success, build.result.describe_failure()
    assert distributions(build.image)["localpkg"] == "1.0.0"
    assert build.pypi_requests == [] and build.cpu_requests == []


def pypi_index_wheel(wheel_factory: WheelFactory, name: str) -> Path:
    (spec,) = [s for s in pypi_wheels() if s.name == name]
    return wheel_factory.build(spec)


# --- pyproject.toml without a lock ----------------------------------------------------


@pytest.mark.parametrize(
    "pyproject",
    [
        """\
        [project]
        name = "svc"
        version = "0.1.0"
        dependencies = ["torch==2.13.0", "flask>=3", "numpy~=2.3.0"]
        """,
        """\
        [tool.poetry]
        name = "svc"
        version = "0.1.0"

        [tool.poetry.dependencies]
        python = "^3.9"
        torch = "2.13.0"
        flask = "^3.0"
        numpy = { version = "~2.3.0" }

        [tool.poetry.group.dev.dependencies]
        smalldep = "*"
        """,
    ],
    ids=["pep621", "poetry"],
)
def test_pyproject_dependencies_build_with_cpu_torch(
    builds: Builds, app: AppFactory, pyproject: str
) -> None:
    build = builds.run(app({"pyproject.toml": pyproject}))

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert installed["torch"] == "2.13.0+cpu"
    assert (installed["flask"], installed["numpy"]) == ("3.0.3", "2.3.1")
    assert "smalldep" not in installed  # a development group
    assert cuda_names(installed) == []


INTERNAL = WheelSpec("internalpkg", "2.0.0", extra_code='ORIGIN = "internal"\n')
# The same name on the public index, newer: taking it would be dependency confusion.
IMPOSTOR = WheelSpec("internalpkg", "9.9.9", extra_code='ORIGIN = "public"\n')


@pytest.mark.parametrize(
    "pyproject",
    [
        """\
        [project]
        name = "svc"
        version = "0.1.0"
        dependencies = ["internalpkg", "scikit-learn"]

        [[tool.uv.index]]
        name = "internal"
        url = "{internal}"
        explicit = true

        [tool.uv.sources]
        internalpkg = {{ index = "internal" }}
        """,
        """\
        [tool.poetry]
        name = "svc"
        version = "0.1.0"

        [tool.poetry.dependencies]
        python = "^3.9"
        internalpkg = {{ version = "*", source = "internal" }}
        scikit-learn = "*"

        [[tool.poetry.source]]
        name = "internal"
        url = "{internal}"
        priority = "explicit"
        """,
    ],
    ids=["uv-sources", "poetry-source"],
)
def test_package_tied_to_an_explicit_index_comes_from_that_index(
    builds: Builds, app: AppFactory, make_index, pyproject: str
) -> None:
    public_names = ("scikit-learn", "scipy", "numpy")
    public = make_index(
        [s for s in pypi_wheels() if s.name in public_names] + [IMPOSTOR]
    )
    internal = make_index([INTERNAL])
    app_dir = app({"pyproject.toml": pyproject.format(internal=internal.url)})

    build = builds.run(app_dir, {"PIP_INDEX_URL": public.url})

    assert build.result.success, build.result.describe_failure()
    assert distributions(build.image)["internalpkg"] == "2.0.0"
    assert run_python(build.image, "import internalpkg; print(internalpkg.ORIGIN)") == (
        "internal\n"
    )
    assert not public.downloaded("internalpkg")


def test_pyproject_routing_torch_to_the_pytorch_index_uses_the_configured_one(
    builds: Builds, app: AppFactory
) -> None:
    # uv's documented set-up for CPU torch; the public index is never contacted
    # (a dead HTTPS proxy would make that fail).
    pyproject = """\
        [project]
        name = "svc"
        version = "0.1.0"
        dependencies = ["torch==2.13.0", "flask==3.0.3"]

        [[tool.uv.index]]
        name = "pytorch-cpu"
        url = "https://download.pytorch.org/whl/cpu"
        explicit = true

        [tool.uv.sources]
        torch = { index = "pytorch-cpu" }
    """
    app_dir = app({"pyproject.toml": pyproject})

    build = builds.run(app_dir, {"HTTPS_PROXY": "http://127.0.0.1:9"})

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert (installed["torch"], installed["filelock"]) == ("2.13.0+cpu", "3.16.1")
    assert build.cpu_downloads == ["torch-2.13.0+cpu-py3-none-any.whl"]


def test_utf16_requirements_file_builds(builds: Builds, app: AppFactory) -> None:
    # What `pip freeze > requirements.txt` writes in Windows PowerShell.
    text = "torch==2.13.0\r\nflask==3.0.3\r\n"
    build = builds.run(app({"requirements.txt": text.encode("utf-16")}))

    assert build.result.success, build.result.describe_failure()
    installed = distributions(build.image)
    assert (installed["torch"], installed["flask"]) == ("2.13.0+cpu", "3.0.3")
