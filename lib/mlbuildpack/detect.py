"""``bin/detect``: claim Python apps that declare an ML package.

Detection passes (exit 0) when the app's declaration (see ``declared``) names a
package of ``classify.ML_PACKAGE_FAMILIES``, either as a direct requirement (or one
that a local project the app installs, such as ``-e .``, declares in its
pyproject.toml) or, for a lock file, as any locked package, or when
``BP_ML_FORCE_DETECT=true``. Otherwise it prints one line saying why and exits 100,
so that a plain Python buildpack later in the builder's order takes the app.
Constraints do not count: they limit versions but install nothing. Only files are
read; there is no network access.

The build plan offers two alternatives, because the buildpack runs in two settings:

1. After Paketo's ``cpython`` buildpack, which provides ``cpython`` but installs it
   for later buildpacks only when one requires it with ``build = true`` (and
   ``launch = true`` for the app's runtime). The first alternative requires it so.
2. Alone, on images that carry ``python3``, or after Heroku's or Google's Python
   buildpacks, which use no plan entries. The second alternative requires nothing.

The lifecycle tries the first alternative first; a requirement nobody provides fails
that trial, so without ``cpython`` in the group the second one is chosen.

We do not provide ``site-packages``. Paketo's ``python-start`` passes with
``cpython`` alone, and it ignores the plan when it builds (it always sets ``python``
as the web process, which would replace ours), so providing it would change nothing
but would need a requirer too: a provide nobody requires fails the trial.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import urlsplit
from urllib.request import url2pathname

import tomli_w
from packaging.specifiers import SpecifierSet

from . import classify
from .config import Config, load_platform_env
from .declared import (
    Declaration,
    DeclarationKind,
    DeclaredRequirement,
    PythonRequest,
    SourceKind,
    read_declaration,
)
from .errors import BuildpackError

DETECT_PASS = 0
DETECT_FAIL = 100
DETECT_ERROR = 1


@dataclass(frozen=True)
class DetectResult:
    """The outcome of detection and the one line that explains it."""

    passed: bool
    reason: str
    python_request: Optional[PythonRequest] = None


def main(argv: Sequence[str]) -> int:
    """Run detection in the current directory; return the exit code.

    The platform directory and plan path come from ``CNB_PLATFORM_DIR`` and
    ``CNB_BUILD_PLAN_PATH`` (Buildpack API 0.8 and later), else from ``argv``.
    Returns 0 (pass), 100 (fail) or 1 when the buildpack itself failed.
    """
    platform_dir = _path_argument("CNB_PLATFORM_DIR", argv, 0)
    plan_path = _path_argument("CNB_BUILD_PLAN_PATH", argv, 1)
    env: Mapping[str, str] = os.environ
    try:
        env = load_platform_env(platform_dir)
        result = detect(Path.cwd(), env)
        print(result.reason)
        if not result.passed:
            return DETECT_FAIL
        if plan_path is not None:
            write_plan(plan_path, build_plan(result.python_request))
        return DETECT_PASS
    except Exception as error:  # noqa: BLE001 - a fault of ours, not of the app
        # Exit code 1 is a detect error: the lifecycle logs this output at info level
        # (pass and fail output only at debug level), so the fault gets seen.
        print(
            f"Python ML buildpack: detection failed unexpectedly: {error!r} "
            "[buildpack fault: please report it]"
        )
        if env.get("BP_ML_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
            traceback.print_exc(file=sys.stdout)
        return DETECT_ERROR


def detect(app_dir: Path, env: Mapping[str, str]) -> DetectResult:
    """Decide whether this buildpack builds the app in ``app_dir``.

    A :class:`BuildpackError` while reading the app (a missing ``-r`` include, an
    invalid setting, a stale lock file) makes detection pass: the app has a dependency
    file, so it is a Python app, and we cannot tell whether it is an ML one. Failing
    would hand it to a buildpack that reports the same fault with a bare pip or uv
    message; passing lets our build report it with the file, the line and the fix.
    """
    try:
        config = Config.from_env(env)
    except BuildpackError as error:
        # Judge the app with the default settings: a bad value of ours, perhaps set
        # for every app on the platform, must not make us take apps that are not ours.
        judged = _judge(app_dir, Config(), env)
        if not judged.passed:
            return judged
        return DetectResult(
            True,
            f"Passing so that the build reports: {error.title}",
            judged.python_request,
        )
    return _judge(app_dir, config, env)


def _judge(app_dir: Path, config: Config, env: Mapping[str, str]) -> DetectResult:
    try:
        declaration = read_declaration(app_dir, config, env)
    except BuildpackError as error:
        where = f" ({error.origin.describe(app_dir)})" if error.origin else ""
        return DetectResult(
            True, f"Passing so that the build reports: {error.title}{where}"
        )

    request = declaration.python_request
    if config.force_detect:
        return DetectResult(True, "BP_ML_FORCE_DETECT=true: detection forced", request)
    if declaration.kind is DeclarationKind.NONE:
        return DetectResult(
            False,
            "No dependency file (requirements.txt, pyproject.toml, uv.lock, "
            "poetry.lock or Pipfile.lock): not a Python ML app; set "
            "BP_ML_FORCE_DETECT=true to use this buildpack anyway",
        )
    found = _ml_packages(declaration)
    if found:
        return DetectResult(
            True, f"ML packages in {declaration.kind}: {', '.join(found)}", request
        )
    return DetectResult(
        False,
        f"No ML package in {_files(declaration)} (looked for torch, tensorflow, "
        "scikit-learn, transformers and others; see the README): not a Python ML app; "
        "set BP_ML_FORCE_DETECT=true to use this buildpack anyway",
    )


def _ml_packages(declaration: Declaration) -> List[str]:
    app_dir = declaration.app_dir
    found = []
    requirements = [
        *declaration.requirements,
        *_local_project_requirements(declaration),
    ]
    for requirement in requirements:
        if requirement.name and classify.is_ml_package(requirement.name):
            found.append(f"{requirement.name} ({requirement.origin.describe(app_dir)})")
    direct = {r.name for r in declaration.requirements}
    for package in declaration.locked_packages or ():
        if classify.is_ml_package(package.name) and package.name not in direct:
            found.append(
                f"{package.name} ({package.origin.describe(declaration.app_dir)})"
            )
            direct.add(package.name)
    return found


def _local_project_requirements(
    declaration: Declaration,
) -> List[DeclaredRequirement]:
    """What the local projects the app installs (``-e .``, ``./libs/x``) declare.

    A requirements.txt that only says ``-e .`` leaves the app's dependencies in its
    own pyproject.toml. Only static ``[project]`` or Poetry dependencies are read; a
    pyproject.toml that cannot be read is skipped, since the build reports it.
    """
    from .pyproject import declares_dependencies, read_pyproject

    found: List[DeclaredRequirement] = []
    for requirement in declaration.requirements:
        if requirement.source_kind is not SourceKind.PATH:
            continue
        pyproject = _local_directory(requirement.text) / "pyproject.toml"
        if not pyproject.is_file() or not declares_dependencies(pyproject):
            continue
        try:
            found.extend(read_pyproject(pyproject, declaration.app_dir).requirements)
        except BuildpackError:
            continue
    return found


def _local_directory(text: str) -> Path:
    """The directory of a local requirement's text (``/app/lib[extra] ; marker``)."""
    location = text.split(" ; ", 1)[0].strip()
    if "@" in location and not location.startswith(("/", "file:")):
        location = location.split("@", 1)[1].strip()  # name @ file:///...
    if location.startswith("file:"):
        location = url2pathname(urlsplit(location).path)
    return Path(re.sub(r"\[[^\]]*\]$", "", location))


def _files(declaration: Declaration) -> str:
    version_files = (".python-version", "runtime.txt")
    names = [
        _relative(f, declaration.app_dir)
        for f in declaration.files
        if f.name not in version_files
    ]
    return ", ".join(names)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def build_plan(python_request: Optional[PythonRequest]) -> Dict[str, Any]:
    """Return the build plan: require ``cpython``, or, as the alternative, nothing.

    When the app asks for a Python version that Paketo's ``cpython`` can read, the
    requirement carries it as ``version`` with the file it came from as
    ``version-source``.
    """
    metadata: Dict[str, Any] = {"build": True, "launch": True}
    if python_request is not None:
        version = semver_constraint(python_request.specifier)
        if version:
            metadata["version"] = version
            metadata["version-source"] = python_request.origin.path.name
    return {
        "requires": [{"name": "cpython", "metadata": metadata}],
        "or": [{}],
    }


def semver_constraint(specifier: SpecifierSet) -> Optional[str]:
    """Return ``specifier`` as a constraint Paketo's version matching reads, or None.

    ``==3.12.*`` becomes ``3.12.*`` and ``>=3.10,<3.13`` becomes ``>=3.10, <3.13``;
    operators without a plain equivalent (``~=``, ``===``) give None.
    """
    parts = []
    for item in sorted(specifier, key=str):
        if item.operator in (">=", "<=", ">", "<", "!="):
            if item.version.endswith(".*"):
                return None
            parts.append(f"{item.operator}{item.version}")
        elif item.operator == "==":
            parts.append(item.version)
        else:
            return None
    return ", ".join(parts) or None


def write_plan(path: Path, plan: Mapping[str, Any]) -> None:
    """Write ``plan`` as TOML to ``path``."""
    path.write_text(tomli_w.dumps(plan))


def _path_argument(variable: str, argv: Sequence[str], position: int) -> Optional[Path]:
    value = os.environ.get(variable) or (argv[position] if len(argv) > position else "")
    return Path(value) if value else None
