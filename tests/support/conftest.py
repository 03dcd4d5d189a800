"""Fixtures for the harness's own tests (tests/support/test_*.py)."""

from .fixtures import (  # noqa: F401
    build_image_env,
    cpu_index,
    make_index,
    private_pypi_index,
    pypi_index,
    wheel_factory,
)
