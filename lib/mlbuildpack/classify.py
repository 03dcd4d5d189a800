"""Which packages this buildpack treats specially, as data.

- :data:`ML_PACKAGE_FAMILIES`: declaring any of these makes ``bin/detect`` pass. The
  README lists them from here.
- :data:`TORCH_FAMILY`: the packages PyTorch publishes on its own index in CPU and
  CUDA builds; they are taken from the index of the chosen variant.
- :func:`is_cuda_package`: the CUDA runtime wheels the Linux ``torch`` wheels from PyPI
  pull in, which a CPU build does not need.
- :data:`DEFAULT_HEAVY_PACKAGES`: packages large enough to deserve an image layer of
  their own (``BP_ML_HEAVY_PACKAGES`` adds more).
- :data:`NEVER_BUILD_FROM_SOURCE`: packages whose source builds need a compiler
  toolchain (Rust, Fortran, C++, CUDA) and take minutes to hours; without a wheel for
  the target, the build stops with a clear error instead (field case F22).

Every name is canonical (PEP 503: lower case, runs of ``-_.`` as ``-``).
"""

from __future__ import annotations

from typing import FrozenSet, Iterable, List, Mapping, Tuple

from packaging.utils import canonicalize_name

ML_PACKAGE_FAMILIES: Mapping[str, Tuple[str, ...]] = {
    "PyTorch": (
        "torch",
        "torchvision",
        "torchaudio",
        "torchtext",
        "pytorch-lightning",
        "lightning",
        "timm",
        "torch-geometric",
    ),
    "TensorFlow and Keras": (
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "tensorflow-intel",
        "tf-keras",
        "keras",
        "tflite-runtime",
    ),
    "JAX": ("jax", "jaxlib", "flax"),
    "Hugging Face": (
        "transformers",
        "sentence-transformers",
        "diffusers",
        "accelerate",
        "peft",
        "optimum",
    ),
    "Classical ML and statistics": (
        "scikit-learn",
        "scipy",
        "statsmodels",
        "xgboost",
        "lightgbm",
        "catboost",
    ),
    "Computer vision": (
        "opencv-python",
        "opencv-python-headless",
        "opencv-contrib-python",
        "opencv-contrib-python-headless",
        "ultralytics",
        "scikit-image",
        "easyocr",
        "paddleocr",
    ),
    "Model runtimes": ("onnx", "onnxruntime", "onnxruntime-gpu", "llama-cpp-python"),
    "Language and speech": ("spacy", "gensim", "openai-whisper"),
    "Other frameworks and search": ("paddlepaddle", "mxnet", "fastai", "faiss-cpu"),
}

ML_PACKAGES: FrozenSet[str] = frozenset(
    name for names in ML_PACKAGE_FAMILIES.values() for name in names
)

TORCH_FAMILY: FrozenSet[str] = frozenset({"torch", "torchvision", "torchaudio"})

# The torch family is not listed: it always goes into the torch layer.
DEFAULT_HEAVY_PACKAGES: FrozenSet[str] = frozenset(
    {
        "numpy",
        "scipy",
        "pandas",
        "pyarrow",
        "polars",
        "scikit-learn",
        "scikit-image",
        "sympy",
        "llvmlite",
        "numba",
        "transformers",
        "tokenizers",
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "jaxlib",
        "xgboost",
        "lightgbm",
        "catboost",
        "opencv-python",
        "opencv-python-headless",
        "opencv-contrib-python",
        "opencv-contrib-python-headless",
        "onnxruntime",
        "onnxruntime-gpu",
        "paddlepaddle",
        "faiss-cpu",
        # Small wheels that unpack big (20, 20 and 11 MB with bytecode in the
        # embeddings sample), pulled in by torch, by vision and Hugging Face
        # packages, and by huggingface-hub. Kept out of ``zz-deps`` so that adding a
        # small package re-sends a small layer.
        "networkx",
        "pillow",
        "hf-xet",
    }
)

NEVER_BUILD_FROM_SOURCE: FrozenSet[str] = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "jaxlib",
        "numpy",
        "scipy",
        "pandas",
        "pyarrow",
        "scikit-learn",
        "llvmlite",
        "numba",
        "tokenizers",
        "safetensors",
        "xgboost",
        "lightgbm",
        "catboost",
        "opencv-python",
        "opencv-python-headless",
        "opencv-contrib-python",
        "opencv-contrib-python-headless",
        "onnxruntime",
        "onnxruntime-gpu",
    }
)

_CUDA_PREFIXES = ("nvidia-", "cuda-", "pytorch-triton")
# nvidia-ml-py only wraps the driver's NVML library for monitoring: it is small and is
# not part of the CUDA runtime that torch pulls in.
_NOT_CUDA_RUNTIME = frozenset({"nvidia-ml-py", "nvidia-ml-py3"})


def canonical(name: str) -> str:
    """Return ``name`` in canonical form (``Scikit_Learn`` becomes ``scikit-learn``)."""
    return canonicalize_name(name)


def is_ml_package(name: str) -> bool:
    """Return True when declaring ``name`` makes an app an ML app for detection."""
    return canonical(name) in ML_PACKAGES


def ml_packages_in(names: Iterable[str]) -> List[str]:
    """Return the ML packages among ``names``, canonical and sorted."""
    return sorted({canonical(n) for n in names} & ML_PACKAGES)


def is_cuda_package(name: str) -> bool:
    """Return True for a CUDA runtime wheel that ``torch`` from PyPI pulls on Linux.

    These are the ``nvidia-*`` libraries (cuBLAS, cuDNN, NCCL, ...), the ``cuda-*``
    packages (``cuda-toolkit``, ``cuda-bindings``, ``cuda-pathfinder``), ``triton``
    and ``pytorch-triton*``.
    """
    canonical_name = canonical(name)
    if canonical_name in _NOT_CUDA_RUNTIME:
        return False
    return canonical_name == "triton" or canonical_name.startswith(_CUDA_PREFIXES)
