"""The package lists that drive detection, torch routing and layer planning."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from mlbuildpack import classify


@pytest.mark.parametrize(
    "listed",
    [
        classify.ML_PACKAGES,
        classify.TORCH_FAMILY,
        classify.DEFAULT_HEAVY_PACKAGES,
        classify.NEVER_BUILD_FROM_SOURCE,
    ],
)
def test_every_listed_name_is_canonical(listed):
    assert all(canonicalize_name(name) == name for name in listed)


@pytest.mark.parametrize(
    "name",
    [
        "torch",
        "torchvision",
        "torchaudio",
        "torchtext",
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "keras",
        "jax",
        "jaxlib",
        "scipy",
        "scikit-learn",
        "sentence-transformers",
        "transformers",
        "xgboost",
        "lightgbm",
        "catboost",
        "opencv-python",
        "opencv-python-headless",
        "opencv-contrib-python",
        "onnxruntime",
        "onnxruntime-gpu",
        "onnx",
        "spacy",
        "statsmodels",
        "Scikit_Learn",
        "OpenCV.Python.Headless",
        "Sentence_Transformers",
    ],
)
def test_ml_packages_are_recognised_in_any_spelling(name):
    assert classify.is_ml_package(name)


@pytest.mark.parametrize("name", ["flask", "numpy", "pandas", "requests", "gunicorn"])
def test_general_packages_are_not_ml(name):
    assert not classify.is_ml_package(name)


def test_torch_family_is_the_packages_of_the_pytorch_index():
    assert {"torch", "torchvision", "torchaudio"} == classify.TORCH_FAMILY
    assert classify.TORCH_FAMILY <= classify.ML_PACKAGES


@pytest.mark.parametrize(
    "name, is_cuda",
    [
        ("nvidia-cublas-cu12", True),
        ("nvidia_cudnn_cu12", True),
        ("nvidia-nccl-cu12", True),
        ("cuda-toolkit", True),
        ("cuda-bindings", True),
        ("cuda-pathfinder", True),
        ("triton", True),
        ("pytorch-triton-rocm", True),
        ("nvidia-ml-py", False),
        ("tritonclient", False),
        ("torch", False),
        ("numpy", False),
    ],
)
def test_cuda_runtime_wheels_are_recognised(name, is_cuda):
    assert classify.is_cuda_package(name) is is_cuda


def test_default_heavy_packages_include_the_big_wheels():
    assert {
        "numpy",
        "scipy",
        "scikit-learn",
        "pandas",
        "pyarrow",
        "transformers",
        "tokenizers",
        "tensorflow",
        "jaxlib",
        "xgboost",
        "lightgbm",
        "opencv-python",
        "onnxruntime",
        "sympy",
        "llvmlite",
        "numba",
    } <= classify.DEFAULT_HEAVY_PACKAGES


def test_default_heavy_packages_include_small_wheels_that_unpack_big():
    assert {"networkx", "pillow", "hf-xet"} <= classify.DEFAULT_HEAVY_PACKAGES


def test_ml_packages_in_returns_canonical_sorted_matches():
    assert classify.ml_packages_in(["Flask", "Torch", "scikit_learn"]) == [
        "scikit-learn",
        "torch",
    ]
