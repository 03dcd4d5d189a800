"""Settings read from the environment, and the errors bad values get."""

from __future__ import annotations

import pytest

from mlbuildpack.config import Config
from mlbuildpack.errors import BuildpackError


@pytest.mark.parametrize("value", ["-1", "50MB", "1.5"])
def test_a_heavy_threshold_that_is_not_a_size_is_refused(value):
    with pytest.raises(BuildpackError) as raised:
        Config.from_env({"BP_ML_HEAVY_THRESHOLD_MB": value})

    assert f"BP_ML_HEAVY_THRESHOLD_MB={value!r}" in raised.value.cause
    assert "0 turns the size rule off" in raised.value.fix


@pytest.mark.parametrize("value, megabytes", [("0", 0), (" 80 ", 80), ("", 50)])
def test_a_heavy_threshold_of_zero_or_more_is_taken(value, megabytes):
    config = Config.from_env({"BP_ML_HEAVY_THRESHOLD_MB": value})

    assert config.heavy_threshold_mb == megabytes
