"""samples/fastapi-embeddings through pack, the lifecycle and Docker.

torch is not in the sample's requirements: sentence-transformers pulls it in. The
tests in this module share one cold build and run in file order; the two rebuilds
come last because they replace the image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.packcli import SAMPLES, Pack, PackBuild, pip_wheel

IMAGE = "mlbp-e2e/fastapi-embeddings"
HEAVY = (
    "numpy",
    "scipy",
    "scikit-learn",
    "transformers",
    "sympy",
    "networkx",
    "pillow",
    "hf-xet",
)

# Run in the image: torch's build, every distribution's name, any CUDA library file.
CUDA_REPORT = """
import json, os, torch, importlib.metadata as m
names = sorted(d.metadata["Name"].lower() for d in m.distributions())
prefixes = ("libcudart", "libcublas", "libcudnn", "libnccl", "libnvrtc", "libcusparse")
cuda_libs = [f for root, _, files in os.walk("/layers") for f in files
             if f.startswith(prefixes)]
print(json.dumps({"version": torch.__version__,
                  "cuda_built": torch.backends.cuda.is_built(),
                  "names": names, "cuda_libs": cuda_libs}))
"""

# Run in the image: wheels, uv or pip caches and our temp dirs anywhere the build
# wrote (the run image's own /usr/share/python-wheels, Debian's, is not ours), and
# anything in /tmp.
FIND_LEFTOVERS = (
    "find /layers /workspace /home /tmp \\( -name '*.whl' -o -name uv-cache"
    " -o -name .ml-buildpack-tmp -o -name 'mlbp-pip-*' -o -path '*/.cache/pip'"
    " -o -path '*/.cache/uv' \\) -print 2>/dev/null; ls -A /tmp"
)


@dataclass
class Built:
    app_dir: Path
    build: PackBuild
    digests: dict[str, str]


@pytest.fixture(scope="module")
def embeddings(pack: Pack, tmp_path_factory: pytest.TempPathFactory) -> Built:
    app_dir = tmp_path_factory.mktemp("embeddings") / "app"
    import shutil

    shutil.copytree(SAMPLES / "fastapi-embeddings", app_dir)
    pack.remove_image(IMAGE)
    build = pack.build(IMAGE, app_dir, clear_cache=True).check()
    return Built(app_dir, build, pack.layer_digests(IMAGE))


def test_app_answers_real_predictions(embeddings: Built, run_app) -> None:
    app = run_app(IMAGE)

    topics = app.post(
        "/classify",
        {
            "texts": [
                "Bond yields rose as the bank cut its forecast.",
                "Whisk the eggs with sugar and butter.",
                "The goalkeeper saved a penalty in extra time.",
            ]
        },
    )
    ranking = app.post(
        "/similar",
        {
            "query": "How do I bake bread?",
            "candidates": [
                "The match ended in a draw.",
                "Let the dough rise before baking.",
            ],
        },
    )
    vectors = app.post("/embed", {"texts": ["hello world"]})

    assert [r["label"] for r in topics["results"]] == ["finance", "cooking", "sport"]
    assert ranking["ranking"][0] == "Let the dough rise before baking."
    assert vectors["dimensions"] == 384


def test_torch_is_the_cpu_build_and_nothing_cuda_is_installed(
    embeddings: Built, pack: Pack
) -> None:
    report = json.loads(pack.python(IMAGE, CUDA_REPORT))

    assert report["version"] == "2.13.0+cpu"
    assert report["cuda_built"] is False
    assert [
        n
        for n in report["names"]
        if n.startswith(("nvidia", "cuda-")) or n in ("triton", "pytorch-triton")
    ] == []
    assert report["cuda_libs"] == []
    assert "sentence-transformers" in report["names"]


def test_build_log_explains_the_torch_substitution(embeddings: Built) -> None:
    output = embeddings.build.output

    assert "torch is reached through sentence-transformers" in output
    assert "-> 2.13.0+cpu from the CPU index" in output
    assert "BP_ML_TORCH_VARIANT=as-declared" in output


def test_torch_and_each_heavy_package_are_separate_image_layers(
    embeddings: Built, pack: Pack
) -> None:
    digests = embeddings.digests
    in_image = set(pack.image_diff_ids(IMAGE))

    for name in ("torch", *HEAVY, "zz-deps", "venv"):
        assert name in digests, f"no {name} layer: {sorted(digests)}"
        assert digests[name] in in_image
    ours = [digests[name] for name in ("torch", *HEAVY, "zz-deps")]
    assert len(set(ours)) == len(ours)


def test_no_cache_wheel_or_temp_dir_is_left_in_the_image(
    embeddings: Built, pack: Pack
) -> None:
    leftovers = pack.in_image(IMAGE, "bash", "-c", FIND_LEFTOVERS)

    assert leftovers.strip() == ""


def test_pip_check_is_clean(embeddings: Built, pack: Pack, tmp_path: Path) -> None:
    wheel = pip_wheel(Path.home() / ".cache" / "mlbp-tests" / "pip")

    output = pack.docker(
        "run",
        "--rm",
        "-v",
        f"{wheel}:/opt/pip.whl:ro",
        "--entrypoint",
        "/cnb/lifecycle/launcher",
        IMAGE,
        "--",
        "python",
        "/opt/pip.whl/pip",
        "check",
        "--disable-pip-version-check",
    )

    assert "No broken requirements found" in output


def test_rebuild_after_app_code_change_reuses_every_dependency_layer(
    embeddings: Built, pack: Pack
) -> None:
    main = embeddings.app_dir / "main.py"
    main.write_text(main.read_text() + "\n# a change of app code only\n")

    rebuild = pack.build(IMAGE, embeddings.app_dir).check()

    assert pack.layer_digests(IMAGE) == embeddings.digests
    assert "Using the previous build's resolution" in rebuild.output
    for name in ("torch", *HEAVY, "zz-deps"):
        assert f"Reusing layer {name}:" in rebuild.output
        assert f"Reusing layer '{'mlstack/python-ml'}:{name}'" in rebuild.output
    assert "Installing layer " not in rebuild.output  # a layer, not the heading


def test_adding_one_small_dependency_rebuilds_only_the_deps_layer(
    embeddings: Built, pack: Pack
) -> None:
    before = pack.layer_digests(IMAGE)
    stack_before = pack.image_diff_ids(IMAGE)
    requirements = embeddings.app_dir / "requirements.txt"
    requirements.write_text(requirements.read_text() + "six==1.17.0\n")

    rebuild = pack.build(IMAGE, embeddings.app_dir).check()
    after = pack.layer_digests(IMAGE)

    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == ["zz-deps"]
    # zz-deps sits above every other dependency layer, so the stack beneath it is
    # the same as before: Docker keeps those layers instead of storing them again.
    stack_after = pack.image_diff_ids(IMAGE)
    beneath = stack_before.index(before["zz-deps"])
    assert stack_after[:beneath] == stack_before[:beneath]
    assert set(before.values()) - {before["zz-deps"]} <= set(stack_after[:beneath])
    assert "added six 1.17.0" in rebuild.output
    assert pack.python(IMAGE, "import six; print(six.__version__)") == "1.17.0"
