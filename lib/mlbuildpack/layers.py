"""Which dependency layers the image gets, and what decides each one's contents.

``plan_layers`` splits the pinned set: the torch family into ``torch``, each heavy
package into a layer named after it, everything else into ``zz-deps``. A layer's key
(:class:`LayerKey`) holds its pins, the interpreter, the index it installs from
(without credentials) and our install layout; when the key stored with the previous
image equals the new one, the layer is reused as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import classify
from .config import Config
from .resolve import Pin

# Bump when the way a layer is installed changes, so old layers are rebuilt.
LAYOUT_VERSION = 1
TORCH_LAYER = "torch"
CUDA_LAYER = "torch-cuda"
# The lifecycle stacks a buildpack's layers in the image in the order of their
# names. The layer that changes most often goes on top, so that changing it leaves
# every layer beneath it with the same parent: Docker then keeps them as they are
# instead of storing a second copy of each under a new chain ID.
REST_LAYER = "zz-deps"
RESERVED = frozenset(
    {"build", "launch", "store", "venv", "uv", TORCH_LAYER, CUDA_LAYER, REST_LAYER}
)


@dataclass(frozen=True)
class LayerPlan:
    """One dependency layer to reuse or install."""

    name: str
    pins: Tuple[Pin, ...]
    from_torch_index: bool = False
    reason: str = ""


def plan_layers(
    pins: Sequence[Pin],
    config: Config,
    sizes: Mapping[str, int],
    torch_index: Optional[str],
) -> List[LayerPlan]:
    """Split ``pins`` into layers: torch family, heavy packages, the rest.

    A package is heavy when it is on the default list, in BP_ML_HEAVY_PACKAGES, or
    its wheel is at least BP_ML_HEAVY_THRESHOLD_MB (0 turns the size rule off).
    Returns the torch layer first, then heavy layers by name, then ``zz-deps``.
    """
    threshold = config.heavy_threshold_mb * 1_000_000
    heavy_names = set(classify.DEFAULT_HEAVY_PACKAGES) | {
        classify.canonical(name) for name in config.heavy_packages
    }
    torch: List[Pin] = []
    cuda: List[Pin] = []
    heavy: Dict[str, LayerPlan] = {}
    rest: List[Pin] = []
    for pin in pins:
        if pin.name in classify.TORCH_FAMILY:
            torch.append(pin)
        elif classify.is_cuda_package(pin.name):
            cuda.append(pin)
        elif pin.name in heavy_names or (
            threshold and sizes.get(pin.name, 0) >= threshold
        ):
            why = (
                "listed as heavy" if pin.name in heavy_names else "wheel over threshold"
            )
            # A name that is taken, or that would sort above the rest layer, gets
            # a prefix.
            name = (
                pin.name
                if pin.name not in RESERVED and pin.name < REST_LAYER
                else f"pkg-{pin.name}"
            )
            heavy[name] = LayerPlan(name, (pin,), reason=why)
        else:
            rest.append(pin)
    plans: List[LayerPlan] = []
    if torch:
        plans.append(
            LayerPlan(
                TORCH_LAYER,
                tuple(torch),
                from_torch_index=bool(torch_index),
                reason="torch family",
            )
        )
    if cuda:
        plans.append(LayerPlan(CUDA_LAYER, tuple(cuda), reason="CUDA runtime wheels"))
    plans.extend(heavy[name] for name in sorted(heavy))
    if rest:
        plans.append(LayerPlan(REST_LAYER, tuple(rest), reason="everything else"))
    return plans


@dataclass(frozen=True)
class LayerKey:
    """Everything that decides a dependency layer's files."""

    pins: Tuple[str, ...]
    python: str
    abi: str
    platform: str
    interpreter: str
    index: str
    bytecode: bool
    layout: int = LAYOUT_VERSION

    def to_metadata(self) -> Dict[str, Any]:
        data = asdict(self)
        data["pins"] = list(self.pins)
        return data

    @classmethod
    def from_metadata(cls, data: Mapping[str, Any]) -> Optional[LayerKey]:
        """Read a stored key; None when it is missing or of another shape."""
        try:
            return cls(
                pins=tuple(str(p) for p in data["pins"]),
                python=str(data["python"]),
                abi=str(data["abi"]),
                platform=str(data["platform"]),
                interpreter=str(data["interpreter"]),
                index=str(data["index"]),
                bytecode=bool(data["bytecode"]),
                layout=int(data["layout"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def key_changes(old: LayerKey, new: LayerKey) -> List[str]:
    """Say what differs between two keys, one line per change, pins first."""
    changes = list(_pin_changes(old.pins, new.pins))
    labels = (
        ("python", "Python"),
        ("abi", "ABI"),
        ("platform", "platform"),
        ("interpreter", "interpreter"),
        ("index", "index"),
        ("bytecode", "bytecode setting"),
        ("layout", "buildpack layout"),
    )
    for field_name, label in labels:
        before, after = getattr(old, field_name), getattr(new, field_name)
        if before != after:
            changes.append(f"{label} changed from {before} to {after}")
    return changes


def _pin_changes(old: Iterable[str], new: Iterable[str]) -> Iterable[str]:
    def split(pins: Iterable[str]) -> Dict[str, str]:
        result = {}
        for pin in pins:
            name, _, version = pin.partition("==")
            result[name.split(" @ ")[0].strip()] = version or pin
        return result

    before, after = split(old), split(new)
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            yield f"removed {name} {before[name]}"
        elif name not in before:
            yield f"added {name} {after[name]}"
        elif before[name] != after[name]:
            yield f"{name} changed from {before[name]} to {after[name]}"
