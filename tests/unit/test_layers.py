"""The layer plan: which pins go where, and in what order the image stacks them."""

from __future__ import annotations

from mlbuildpack import layers
from mlbuildpack.config import Config
from mlbuildpack.resolve import Pin


def pin(name: str, version: str = "1.0") -> Pin:
    return Pin(name, version, f"{name}=={version}")


def test_the_rest_layer_is_stacked_above_every_other_layer():
    # The lifecycle orders a buildpack's layers by name; the rest layer changes
    # most often, so it must come last for every name a plan can give.
    names = [
        "torch",
        "nvidia-cublas-cu12",
        "numpy",
        "zope-interface",
        "z3-solver",
        "zzz",
        "venv",
        "uv",
        "deps",
        "flask",
    ]
    config = Config.from_env(
        {"BP_ML_HEAVY_PACKAGES": "zope-interface z3-solver zzz venv uv deps"}
    )

    plans = layers.plan_layers([pin(n) for n in names], config, {}, torch_index=None)

    by_name = {plan.name: plan for plan in plans}
    rest = by_name[layers.REST_LAYER]
    assert [p.name for p in rest.pins] == ["flask"]
    others = [name for name in by_name if name != layers.REST_LAYER]
    assert max([*others, "venv", "uv"]) < layers.REST_LAYER, sorted(by_name)
    assert {"pkg-venv", "pkg-uv", "deps", "pkg-zzz", "z3-solver"} <= set(by_name)
