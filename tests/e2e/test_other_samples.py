"""samples/flask-sklearn-pyproject and samples/procfile-torch-cpu, built for real."""

from __future__ import annotations

import pytest
from support.packcli import SAMPLES, Pack

FLASK_IMAGE = "mlbp-e2e/flask-sklearn-pyproject"
PROCFILE_IMAGE = "mlbp-e2e/procfile-torch-cpu"


@pytest.fixture(scope="module")
def flask_image(pack: Pack, tmp_path_factory: pytest.TempPathFactory) -> str:
    pack.remove_image(FLASK_IMAGE)
    pack.build(
        FLASK_IMAGE, _sample("flask-sklearn-pyproject"), clear_cache=True
    ).check()
    return FLASK_IMAGE


@pytest.fixture(scope="module")
def procfile_image(pack: Pack) -> str:
    pack.remove_image(PROCFILE_IMAGE)
    build = pack.build(PROCFILE_IMAGE, _sample("procfile-torch-cpu"), clear_cache=True)
    build.check()
    assert "used for torch, torchvision and torchaudio only" in build.output
    return PROCFILE_IMAGE


def _sample(name: str):
    return SAMPLES / name


def test_flask_pyproject_app_classifies_iris(flask_image: str, run_app) -> None:
    app = run_app(flask_image)

    answer = app.post(
        "/predict", {"measurements": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    )

    assert [r["species"] for r in answer["results"]] == ["setosa", "virginica"]


def test_flask_app_without_torch_has_no_torch_layer(
    flask_image: str, pack: Pack
) -> None:
    digests = pack.layer_digests(flask_image)

    assert "torch" not in digests
    assert {"scipy", "scikit-learn", "numpy", "zz-deps"} <= set(digests)


def test_flask_app_runs_under_gunicorn_with_a_long_timeout(
    flask_image: str, pack: Pack
) -> None:
    command = pack.docker(
        "inspect",
        "--format",
        '{{index .Config.Labels "io.buildpacks.build.metadata"}}',
        flask_image,
    )

    assert "gunicorn app:app" in command
    assert "--timeout 300" in command


def test_procfile_app_serves_torch_predictions(procfile_image: str, run_app) -> None:
    app = run_app(procfile_image)

    answer = app.get("/predict?x=2")

    assert abs(answer["y"] - 8.0) < 0.05
    assert answer["torch"] == "2.13.0+cpu"
    assert answer["cuda_built"] is False


def test_procfile_process_is_the_default(procfile_image: str, pack: Pack) -> None:
    metadata = pack.docker(
        "inspect",
        "--format",
        '{{index .Config.Labels "io.buildpacks.build.metadata"}}',
        procfile_image,
    )

    assert "python server.py" in metadata
