"""Which indexes serve the app's packages: files, pip's variables and uv's."""

from __future__ import annotations

from mlbuildpack.indexes import PYPI_SIMPLE, app_indexes

TORCH = "https://download.pytorch.org/whl/cpu"


def indexes(env, index_url=None, extra=()):
    return app_indexes(env, index_url, list(extra), [], [], TORCH)


def test_pypi_serves_when_nothing_names_an_index():
    assert indexes({}).default == PYPI_SIMPLE


def test_the_environment_wins_over_the_files_and_uv_s_variables_over_pip_s():
    files = "https://files.example/simple"
    pip = "https://pip.example/simple"
    uv = "https://uv.example/simple"

    assert indexes({"PIP_INDEX_URL": pip}, files).default == pip
    assert indexes({"UV_INDEX_URL": uv}, files).default == uv
    assert indexes({"PIP_INDEX_URL": pip, "UV_DEFAULT_INDEX": uv}).default == uv


def test_extra_indexes_come_from_files_pip_and_uv_named_or_not():
    found = indexes(
        {
            "PIP_EXTRA_INDEX_URL": "https://a.example/simple",
            "UV_EXTRA_INDEX_URL": "https://b.example/simple",
            "UV_INDEX": "internal=https://c.example/simple https://d.example/simple "
            f"pytorch={TORCH}",
        },
        extra=["https://files.example/simple"],
    )

    assert found.extra == (
        "https://files.example/simple",
        "https://a.example/simple",
        "https://b.example/simple",
        "https://c.example/simple",
        "https://d.example/simple",
    )
    assert found.scoped_to_torch == (TORCH,)
