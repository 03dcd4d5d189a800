"""Index credentials reach the indexes and nothing else: not the log, not a layer's
files or metadata, not launch.toml, not the build cache."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from buildkit import AppFactory, Build, Builds
from image_checks import distributions, run_python
from support.index import IndexServer

FILES = {
    "requirements.txt": "torch==2.13.0\nnumpy==2.3.0\nflask==3.0.3\n",
    "app.py": "from flask import Flask\n\napp = Flask(__name__)\n",
}


@pytest.fixture(scope="module")
def private_cpu_index(cpu_index: IndexServer) -> Iterator[IndexServer]:
    """The CPU-index stand-in's files behind basic auth, with its own password."""
    password = f"t0rch-{secrets.token_hex(8)}"
    with IndexServer(cpu_index.root, username="torch-user", password=password) as index:
        yield index


def assert_nowhere(build: Build, secret: str) -> None:
    """``secret`` (and its basic-auth header form) is in no output, file or record."""
    result = build.result
    image = result.image
    header = base64.b64encode(f"mlbp-user:{secret}".encode()).decode()
    for needle in (secret, header):
        assert needle not in result.output
        assert needle not in result.detect.output
        assert needle not in "\n".join(result.lifecycle_log)
        assert image.files_containing(needle) == []
        assert needle not in tomli_w.dumps(image.launch)
        assert needle not in tomli_w.dumps(result.layer_tomls)
        assert result.cache is not None
        for layer in result.cache.layers.values():
            assert not files_containing(layer.path, needle), layer.name
            assert needle not in tomli_w.dumps(layer.metadata)


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and data in path.read_bytes()
    ]


@pytest.fixture(scope="module")
def env_credentials(
    builds: Builds,
    module_app: AppFactory,
    private_pypi_index: IndexServer,
    private_cpu_index: IndexServer,
) -> Build:
    """A cold build (uv too is installed through the private index)."""
    app_dir = module_app(FILES, name="env-credentials")
    private_pypi_index.clear_log()
    private_cpu_index.clear_log()
    build = builds.run(
        app_dir,
        {
            "PIP_INDEX_URL": private_pypi_index.url_with_credentials,
            "BP_ML_TORCH_INDEX_URL": private_cpu_index.url_with_credentials,
        },
        cache=None,
    )
    assert build.result.success, build.result.describe_failure()
    return build


def test_build_uses_the_private_indexes_with_their_credentials(
    env_credentials: Build,
    private_pypi_index: IndexServer,
    private_cpu_index: IndexServer,
) -> None:
    served = private_pypi_index.downloads()
    assert any(name.startswith("uv-0.13.9-") for name in served)
    assert "flask-3.0.3-py3-none-any.whl" in served
    assert private_cpu_index.downloads() == ["torch-2.13.0+cpu-py3-none-any.whl"]
    assert {r.user for r in private_pypi_index.requests if r.status == 200} == {
        "mlbp-user"
    }
    # The public stand-ins were not used.
    assert env_credentials.pypi_requests == [] and env_credentials.cpu_requests == []
    assert distributions(env_credentials.image)["torch"] == "2.13.0+cpu"


def test_index_password_appears_nowhere(
    env_credentials: Build, private_pypi_index: IndexServer
) -> None:
    assert private_pypi_index.password
    assert_nowhere(env_credentials, private_pypi_index.password)


def test_torch_index_password_appears_nowhere(
    env_credentials: Build, private_cpu_index: IndexServer
) -> None:
    assert private_cpu_index.password
    assert_nowhere(env_credentials, private_cpu_index.password)


def test_layer_metadata_names_the_indexes_without_credentials(
    env_credentials: Build,
    private_pypi_index: IndexServer,
    private_cpu_index: IndexServer,
) -> None:
    layers = env_credentials.image.layers
    cpu_host = private_cpu_index.url.split("//", 1)[1]
    pypi_host = private_pypi_index.url.split("//", 1)[1]

    assert layers["torch"].metadata["index"] == f"http://***@{cpu_host}"
    assert layers["numpy"].metadata["index"] == f"http://***@{pypi_host}"
    assert layers["zz-deps"].metadata["index"] == f"http://***@{pypi_host}"
    assert "***@" in env_credentials.output


def test_rebuild_with_the_same_credentials_reuses_every_layer(
    builds: Builds,
    module_app: AppFactory,
    env_credentials: Build,
    private_pypi_index: IndexServer,
    private_cpu_index: IndexServer,
) -> None:
    app_dir = module_app(FILES, name="env-credentials-again")
    build = builds.run(
        app_dir,
        {
            "PIP_INDEX_URL": private_pypi_index.url_with_credentials,
            "BP_ML_TORCH_INDEX_URL": private_cpu_index.url_with_credentials,
        },
        previous=env_credentials,
    )

    assert build.result.success, build.result.describe_failure()
    statuses = {n: layer.status for n, layer in build.image.layers.items()}
    assert set(statuses.values()) <= {"reused", "unchanged"}, statuses
    assert_nowhere(build, private_pypi_index.password or "")
    assert_nowhere(build, private_cpu_index.password or "")


def test_credentials_expanded_from_a_variable_in_requirements_stay_hidden(
    builds: Builds, app: AppFactory, private_pypi_index: IndexServer
) -> None:
    # pip expands ${VAR} in requirements files; a token is often passed that way.
    host = private_pypi_index.url.split("//", 1)[1]
    app_dir = app(
        {
            "requirements.txt": f"""\
                --extra-index-url http://mlbp-user:${{PRIVATE_TOKEN}}@{host}
                torch==2.13.0
                smalldep==1.17.0
            """
        }
    )
    private_pypi_index.clear_log()

    build = builds.run(app_dir, {"PRIVATE_TOKEN": private_pypi_index.password})

    assert build.result.success, build.result.describe_failure()
    assert "smalldep-1.17.0-py3-none-any.whl" in private_pypi_index.downloads()
    assert run_python(build.image, "import smalldep; print('ok')").strip() == "ok"
    assert_nowhere(build, private_pypi_index.password or "")


def test_credentials_in_a_direct_url_requirement_stay_hidden(
    builds: Builds, app: AppFactory, private_pypi_index: IndexServer
) -> None:
    host = private_pypi_index.url.split("//", 1)[1].removesuffix("/simple")
    wheel = f"http://mlbp-user:${{PRIVATE_TOKEN}}@{host}/packages/"
    app_dir = app(
        {
            "requirements.txt": f"""\
                torch==2.13.0
                smalldep @ {wheel}smalldep-1.17.0-py3-none-any.whl
            """
        }
    )
    token = {"PRIVATE_TOKEN": private_pypi_index.password}

    first = builds.run(app_dir, token)
    again = builds.run(app_dir, token, previous=first)

    for build in (first, again):
        assert build.result.success, build.result.describe_failure()
        assert_nowhere(build, private_pypi_index.password or "")
    assert run_python(again.image, "import smalldep; print('ok')").strip() == "ok"
    assert any(
        "smalldep @ http://***@" in pin
        for pin in again.image.layers["zz-deps"].metadata["pins"]
    )
    # The stored pin lost its credentials, so it is resolved again, not reused as
    # stored; the layers themselves are still reused.
    assert "Using the previous build's resolution" not in again.output
    statuses = {n: layer.status for n, layer in again.image.layers.items()}
    assert set(statuses.values()) <= {"reused", "unchanged"}, statuses


def test_an_error_that_quotes_a_line_hides_the_line_s_credentials(
    builds: Builds, app: AppFactory
) -> None:
    index = "https://someone:s3cr3t-in-line@example.invalid/simple"
    app_dir = app(
        {"requirements.txt": f"--extra-index-url {index} --bogus\ntorch==2.13.0\n"}
    )

    build = builds.run(app_dir)

    assert not build.result.success
    assert "--bogus is not an option" in build.result.output
    assert "https://***@example.invalid/simple" in build.result.output
    assert "s3cr3t-in-line" not in build.result.output
