"""Fixtures for the harness's own tests (tests/support/test_*.py)."""

import pytest

from . import fixtures


def pytest_configure(config: pytest.Config) -> None:
    fixtures.register(config)
