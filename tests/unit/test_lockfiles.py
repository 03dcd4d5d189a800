"""Reading uv.lock, poetry.lock and Pipfile.lock."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mlbuildpack.declared import DeclarationKind, SourceKind
from mlbuildpack.errors import BuildpackError, Origin
from mlbuildpack.lockfiles import read_pipfile_lock, read_poetry_lock, read_uv_lock

# ---------------------------------------------------------------------------- uv.lock

UV_PYPROJECT = """\
[project]
name = "ml-app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = [
    "flask>=3.0",
    "requests",
    "sentence-transformers==3.0.1",
    "transformers[torch]",
]

[project.optional-dependencies]
gpu = ["nvidia-cublas-cu12"]

[dependency-groups]
dev = ["pytest"]

[tool.uv.sources]
requests = { git = "https://github.com/psf/requests", tag = "v2.32.3" }
"""

REQUESTS_COMMIT = "0e322af87745eff34caffe4df68456ebc20d9068"
REQUESTS_GIT = f"https://github.com/psf/requests?tag=v2.32.3#{REQUESTS_COMMIT}"

# uv writes each edge on one line; these two are long, so they are spelled out here.
TORCH_FOR_MACOS = (
    '{ name = "torch", version = "2.3.1", '
    'source = { registry = "https://pypi.org/simple" }, '
    "marker = \"sys_platform == 'darwin'\" }"
)
TORCH_FOR_THE_REST = (
    '{ name = "torch", version = "2.3.1+cpu", '
    'source = { registry = "https://download.pytorch.org/whl/cpu" }, '
    "marker = \"sys_platform != 'darwin'\" }"
)

UV_LOCK = f"""\
version = 1
revision = 2
requires-python = ">=3.11"

[[package]]
name = "flask"
version = "3.0.3"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [
    {{ name = "werkzeug" }},
]
sdist = {{ url = "https://files.example/flask-3.0.3.tar.gz", hash = "sha256:a" }}
wheels = [
    {{ url = "https://files.example/flask-3.0.3-py3-none-any.whl", hash = "sha256:b" }},
]

[[package]]
name = "ml-app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "flask" }},
    {{ name = "requests" }},
    {{ name = "sentence-transformers" }},
    {{ name = "transformers", extra = ["torch"] }},
]

[package.optional-dependencies]
gpu = [
    {{ name = "nvidia-cublas-cu12" }},
]

[package.dev-dependencies]
dev = [
    {{ name = "pytest" }},
]

[package.metadata]
requires-dist = [
    {{ name = "flask", specifier = ">=3.0" }},
    {{ name = "nvidia-cublas-cu12", marker = "extra == 'gpu'" }},
    {{ name = "requests", git = "https://github.com/psf/requests?tag=v2.32.3" }},
    {{ name = "sentence-transformers", specifier = "==3.0.1" }},
    {{ name = "transformers", extras = ["torch"] }},
]
provides-extras = ["gpu"]

[package.metadata.requires-dev]
dev = [{{ name = "pytest" }}]

[[package]]
name = "nvidia-cublas-cu12"
version = "12.1.3.1"
source = {{ registry = "https://pypi.org/simple" }}

[[package]]
name = "pytest"
version = "8.2.0"
source = {{ registry = "https://pypi.org/simple" }}

[[package]]
name = "requests"
version = "2.32.3"
source = {{ git = "{REQUESTS_GIT}" }}

[[package]]
name = "sentence-transformers"
version = "3.0.1"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [
    {TORCH_FOR_MACOS},
    {TORCH_FOR_THE_REST},
    {{ name = "transformers" }},
]

[[package]]
name = "torch"
version = "2.3.1"
source = {{ registry = "https://pypi.org/simple" }}
resolution-markers = ["sys_platform == 'darwin'"]

[[package]]
name = "torch"
version = "2.3.1+cpu"
source = {{ registry = "https://download.pytorch.org/whl/cpu" }}
resolution-markers = ["sys_platform != 'darwin'"]

[[package]]
name = "transformers"
version = "4.41.2"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [
    {{ name = "tokenizers" }},
]

[package.optional-dependencies]
torch = [
    {{ name = "accelerate" }},
]

[[package]]
name = "tokenizers"
version = "0.19.1"
source = {{ registry = "https://pypi.org/simple" }}

[[package]]
name = "accelerate"
version = "0.30.1"
source = {{ registry = "https://pypi.org/simple" }}

[[package]]
name = "werkzeug"
version = "3.0.3"
source = {{ registry = "https://pypi.org/simple" }}
"""


@pytest.fixture
def uv_project(make_app):
    return make_app({"pyproject.toml": UV_PYPROJECT, "uv.lock": UV_LOCK})


def packages_of(declaration) -> dict:
    found: dict = {}
    for package in declaration.locked_packages:
        found.setdefault(package.name, []).append(package)
    return found


def test_uv_lock_installs_what_the_project_needs_without_dev_or_extras(uv_project):
    declaration = read_uv_lock(uv_project / "uv.lock", uv_project)

    assert declaration.kind is DeclarationKind.UV_LOCK
    assert sorted(packages_of(declaration)) == [
        "accelerate",
        "flask",
        "requests",
        "sentence-transformers",
        "tokenizers",
        "torch",
        "transformers",
        "werkzeug",
    ]
    assert declaration.files == (uv_project / "uv.lock", uv_project / "pyproject.toml")
    assert [r.name for r in declaration.requirements] == [
        "flask",
        "requests",
        "sentence-transformers",
        "transformers",
    ]
    assert declaration.python_request.specifier == SpecifierSet(">=3.11")


def test_uv_lock_keeps_versions_sources_markers_and_edges(uv_project):
    found = packages_of(read_uv_lock(uv_project / "uv.lock", uv_project))

    flask = found["flask"][0]
    assert flask.version == "3.0.3"
    assert flask.source.kind is SourceKind.INDEX
    assert flask.source.location == "https://pypi.org/simple"
    assert flask.hashes == ("sha256:a", "sha256:b")
    assert flask.origin == Origin(uv_project / "uv.lock", 5)
    assert [d.name for d in flask.depends_on] == ["werkzeug"]

    torches = {p.version: p for p in found["torch"]}
    assert torches["2.3.1+cpu"].marker == "sys_platform != 'darwin'"
    assert (
        torches["2.3.1+cpu"].source.location == "https://download.pytorch.org/whl/cpu"
    )
    edges = found["sentence-transformers"][0].depends_on
    assert [(d.name, d.marker) for d in edges][:2] == [
        ("torch", "sys_platform == 'darwin'"),
        ("torch", "sys_platform != 'darwin'"),
    ]
    # The extra the project asked of transformers adds its edge.
    assert [d.name for d in found["transformers"][0].depends_on] == [
        "tokenizers",
        "accelerate",
    ]


def test_uv_lock_git_source_is_pinned_to_its_commit(uv_project):
    requests = packages_of(read_uv_lock(uv_project / "uv.lock", uv_project))[
        "requests"
    ][0]

    assert requests.source.kind is SourceKind.VCS
    assert requests.source.location == "git+https://github.com/psf/requests"
    assert requests.source.reference == "0e322af87745eff34caffe4df68456ebc20d9068"
    assert requests.requirement_text() == (
        "requests @ git+https://github.com/psf/requests"
        "@0e322af87745eff34caffe4df68456ebc20d9068"
    )
    assert (
        packages_of(read_uv_lock(uv_project / "uv.lock", uv_project))["flask"][
            0
        ].requirement_text()
        == "flask==3.0.3"
    )


def test_uv_lock_out_of_date_with_a_changed_pin_names_the_pyproject_line(uv_project):
    pyproject = uv_project / "pyproject.toml"
    pyproject.write_text(UV_PYPROJECT.replace("==3.0.1", "==3.0.2"))

    with pytest.raises(BuildpackError) as raised:
        read_uv_lock(uv_project / "uv.lock", uv_project)

    error = raised.value
    assert "out of date" in error.title
    assert error.origin == Origin(pyproject, 8)
    assert "==3.0.2" in error.cause and "==3.0.1" in error.cause
    assert "uv lock" in error.fix


def test_uv_lock_out_of_date_with_a_new_dependency(uv_project):
    (uv_project / "pyproject.toml").write_text(
        UV_PYPROJECT.replace('"flask>=3.0",', '"flask>=3.0",\n    "numpy",')
    )

    with pytest.raises(BuildpackError) as raised:
        read_uv_lock(uv_project / "uv.lock", uv_project)

    assert "numpy" in raised.value.cause


def test_uv_lock_of_another_format_version_is_refused(uv_project):
    (uv_project / "uv.lock").write_text(
        UV_LOCK.replace("version = 1\n", "version = 2\n", 1)
    )

    with pytest.raises(BuildpackError) as raised:
        read_uv_lock(uv_project / "uv.lock", uv_project)

    assert raised.value.origin.line == 1


def test_uv_lock_edge_to_a_missing_package_is_an_error(uv_project):
    broken = re.sub(r'\[\[package\]\]\nname = "werkzeug".*', "", UV_LOCK, flags=re.S)
    (uv_project / "uv.lock").write_text(broken)

    with pytest.raises(BuildpackError) as raised:
        read_uv_lock(uv_project / "uv.lock", uv_project)

    assert "werkzeug" in raised.value.cause
    assert raised.value.origin.line == 5  # the flask entry that needs it


def test_uv_lock_that_is_not_toml_names_the_line(uv_project):
    (uv_project / "uv.lock").write_text("version = 1\n[[package]\n")

    with pytest.raises(BuildpackError) as raised:
        read_uv_lock(uv_project / "uv.lock", uv_project)

    assert raised.value.origin == Origin(uv_project / "uv.lock", 2)


# ------------------------------------------------------------------------ poetry.lock

POETRY_PYPROJECT = """\
[tool.poetry]
name = "svc"
version = "0.1.0"

[tool.poetry.dependencies]
python = "^3.11"
torch = { version = "2.3.1+cpu", source = "pytorch-cpu" }
requests = { git = "https://github.com/psf/requests.git", tag = "v2.32.3" }

[tool.poetry.group.dev.dependencies]
pytest = "^8.0"

[[tool.poetry.source]]
name = "pytorch-cpu"
url = "https://download.pytorch.org/whl/cpu"
priority = "explicit"
"""

POETRY_LOCK = """\
[[package]]
name = "torch"
version = "2.3.1+cpu"
description = "Tensors and dynamic neural networks"
optional = false
python-versions = ">=3.8.0"
groups = ["main"]
files = [
    {file = "torch-2.3.1+cpu-cp311-cp311-linux_x86_64.whl", hash = "sha256:111"},
]

[package.dependencies]
filelock = "*"
typing-extensions = {version = ">=4.8.0", markers = "python_version < \\"3.13\\""}

[package.source]
type = "legacy"
url = "https://download.pytorch.org/whl/cpu"
reference = "pytorch-cpu"

[[package]]
name = "filelock"
version = "3.15.1"
description = "A platform independent file lock."
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = [
    {file = "filelock-3.15.1-py3-none-any.whl", hash = "sha256:222"},
]

[[package]]
name = "typing-extensions"
version = "4.12.2"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["main"]
markers = "python_version < \\"3.13\\""
files = []

[[package]]
name = "pytest"
version = "8.2.0"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = []

[[package]]
name = "requests"
version = "2.32.3"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = []

[package.source]
type = "git"
url = "https://github.com/psf/requests.git"
reference = "v2.32.3"
resolved_reference = "0e322af87745eff34caffe4df68456ebc20d9068"

[metadata]
lock-version = "2.1"
python-versions = "^3.11"
content-hash = "0000"
"""


@pytest.fixture
def poetry_project(make_app):
    return make_app({"pyproject.toml": POETRY_PYPROJECT, "poetry.lock": POETRY_LOCK})


def test_poetry_lock_installs_the_main_group_only(poetry_project):
    declaration = read_poetry_lock(poetry_project / "poetry.lock", poetry_project)
    found = packages_of(declaration)

    assert declaration.kind is DeclarationKind.POETRY_LOCK
    assert sorted(found) == ["filelock", "requests", "torch", "typing-extensions"]
    torch = found["torch"][0]
    assert torch.version == "2.3.1+cpu"
    assert torch.source.location == "https://download.pytorch.org/whl/cpu"
    assert torch.hashes == ("sha256:111",)
    assert [(d.name, d.marker) for d in torch.depends_on] == [
        ("filelock", None),
        ("typing-extensions", 'python_version < "3.13"'),
    ]
    assert found["typing-extensions"][0].marker == 'python_version < "3.13"'
    requests = found["requests"][0]
    assert requests.source.kind is SourceKind.VCS
    assert requests.source.reference == "0e322af87745eff34caffe4df68456ebc20d9068"
    assert declaration.python_request.specifier == SpecifierSet(">=3.11,<4.0.0")


@pytest.mark.parametrize("lock_style", ["category", "lock-2.0"])
def test_poetry_lock_main_group_in_older_formats(poetry_project, lock_style):
    text = POETRY_LOCK
    if lock_style == "category":
        text = text.replace('groups = ["main"]', 'category = "main"')
        text = text.replace('groups = ["dev"]', 'category = "dev"')
    else:
        text = re.sub(r"groups = .*\n", "", text)
    (poetry_project / "poetry.lock").write_text(text)

    found = packages_of(
        read_poetry_lock(poetry_project / "poetry.lock", poetry_project)
    )

    assert sorted(found) == ["filelock", "requests", "torch", "typing-extensions"]


def test_poetry_lock_missing_a_declared_dependency_is_out_of_date(poetry_project):
    pyproject = poetry_project / "pyproject.toml"
    pyproject.write_text(
        POETRY_PYPROJECT.replace('python = "^3.11"', 'python = "^3.11"\nflask = "^3.0"')
    )

    with pytest.raises(BuildpackError) as raised:
        read_poetry_lock(poetry_project / "poetry.lock", poetry_project)

    assert raised.value.origin == Origin(pyproject, 7)
    assert "poetry lock" in raised.value.fix


# ----------------------------------------------------------------------- Pipfile.lock

PIPFILE_LOCK = {
    "_meta": {
        "hash": {"sha256": "0000"},
        "pipfile-spec": 6,
        "requires": {"python_version": "3.11"},
        "sources": [
            {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True},
            {
                "name": "pytorch",
                "url": "https://download.pytorch.org/whl/cpu",
                "verify_ssl": True,
            },
        ],
    },
    "default": {
        "torch": {
            "hashes": ["sha256:111"],
            "index": "pytorch",
            "markers": "python_version >= '3.8'",
            "version": "==2.3.1+cpu",
        },
        "flask": {"hashes": ["sha256:222"], "index": "pypi", "version": "==3.0.3"},
        "requests": {"git": "https://github.com/psf/requests.git", "ref": "0e322af8"},
        "mylib": {"editable": True, "path": "./libs/mylib"},
    },
    "develop": {"pytest": {"version": "==8.2.0"}},
}


@pytest.fixture
def pipenv_project(make_app):
    return make_app({"Pipfile.lock": json.dumps(PIPFILE_LOCK, indent=4)})


def test_pipfile_lock_reads_the_default_section_with_index_names_mapped(pipenv_project):
    lock = pipenv_project / "Pipfile.lock"
    declaration = read_pipfile_lock(lock, pipenv_project)
    found = {p.name: p for p in declaration.locked_packages}

    assert declaration.kind is DeclarationKind.PIPFILE_LOCK
    assert sorted(found) == ["flask", "mylib", "requests", "torch"]
    torch = found["torch"]
    assert torch.version == "2.3.1+cpu"
    assert torch.source.location == "https://download.pytorch.org/whl/cpu"
    assert torch.marker == "python_version >= '3.8'"
    assert torch.depends_on is None
    assert torch.origin.line is not None
    assert found["flask"].source.location == "https://pypi.org/simple"
    assert (
        found["requests"].source.location == "git+https://github.com/psf/requests.git"
    )
    assert found["mylib"].source.editable
    assert found["mylib"].source.location == str(pipenv_project / "libs/mylib")
    assert declaration.python_request.specifier == SpecifierSet("==3.11.*")
    assert declaration.index_options.index_url.value == "https://pypi.org/simple"


def test_pipfile_lock_source_urls_expand_variables_as_pipenv_does(pipenv_project):
    data = json.loads(json.dumps(PIPFILE_LOCK))
    url = "https://${MIRROR_USER}:$MIRROR_TOKEN@mirror.example/simple/$UNSET"
    data["_meta"]["sources"][0]["url"] = url
    (pipenv_project / "Pipfile.lock").write_text(json.dumps(data, indent=4))
    env = {"MIRROR_USER": "me", "MIRROR_TOKEN": "t0ken"}

    declaration = read_pipfile_lock(
        pipenv_project / "Pipfile.lock", pipenv_project, env
    )

    expanded = "https://me:t0ken@mirror.example/simple/$UNSET"
    assert declaration.index_options.index_url.value == expanded
    assert declaration.index_options.index_url.origin.line is not None
    found = {p.name: p for p in declaration.locked_packages}
    assert found["flask"].source.location == expanded


def test_pipfile_lock_missing_a_pipfile_package_is_out_of_date(pipenv_project):
    (pipenv_project / "Pipfile").write_text('[packages]\nflask = "*"\nnumpy = "*"\n')

    with pytest.raises(BuildpackError) as raised:
        read_pipfile_lock(pipenv_project / "Pipfile.lock", pipenv_project)

    assert raised.value.origin == Origin(pipenv_project / "Pipfile", 3)
    assert "pipenv lock" in raised.value.fix


def test_pipfile_lock_with_an_undefined_index_is_an_error(pipenv_project):
    data = json.loads(json.dumps(PIPFILE_LOCK))
    data["default"]["flask"]["index"] = "mirror"
    (pipenv_project / "Pipfile.lock").write_text(json.dumps(data, indent=4))

    with pytest.raises(BuildpackError) as raised:
        read_pipfile_lock(pipenv_project / "Pipfile.lock", pipenv_project)

    assert "'mirror'" in raised.value.cause


def test_pipfile_lock_that_is_not_json_names_the_line(make_app):
    app = make_app({"Pipfile.lock": '{\n  "default": {\n    "flask": \n}\n'})

    with pytest.raises(BuildpackError) as raised:
        read_pipfile_lock(app / "Pipfile.lock", app)

    assert raised.value.origin == Origin(app / "Pipfile.lock", 4)


def test_lock_paths_are_absolute(pipenv_project):
    lock = read_pipfile_lock(pipenv_project / "Pipfile.lock", pipenv_project)

    assert all(
        Path(p.source.location).is_absolute()
        for p in lock.locked_packages
        if p.source.kind is SourceKind.PATH
    )
