"""What an app declares it needs, and which of its files says so.

An app may describe its dependencies in several ways. :func:`read_declaration` picks
one source, in this order, and reads it into a :class:`Declaration`:

1. the file named by ``BP_ML_REQUIREMENTS_FILE``, when set;
2. a lock file: ``uv.lock``, then ``poetry.lock``, then ``Pipfile.lock``;
3. ``requirements.txt``;
4. ``pyproject.toml`` (PEP 621 ``[project]`` or Poetry's ``[tool.poetry]``).

Lock files come first because they say exactly what to install; a requirements file
beside a lock file is usually an export of it. The Python version the app asks for is
read from ``.python-version``, then ``runtime.txt``, then the chosen file itself
(``requires-python``, Poetry's ``python`` dependency, the lock's own record).

Every requirement, option and locked package keeps its :class:`Origin` so that errors
and the build log can point at the line that declared it. Nothing here touches the
network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import FrozenSet, Mapping, Optional, Tuple

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from .config import Config
from .errors import BuildpackError, Origin
from .tomlcompat import read_text

PYPI_SIMPLE_URL = "https://pypi.org/simple"


class DeclarationKind(str, Enum):
    """Which kind of file an app's dependencies were read from."""

    REQUIREMENTS_TXT = "requirements.txt"
    PYPROJECT_PEP621 = "pyproject (PEP 621)"
    PYPROJECT_POETRY = "pyproject (Poetry)"
    UV_LOCK = "uv.lock"
    POETRY_LOCK = "poetry.lock"
    PIPFILE_LOCK = "Pipfile.lock"
    NONE = "no dependency file"

    def __str__(self) -> str:
        return self.value


class SourceKind(str, Enum):
    """Where a package comes from."""

    INDEX = "index"  # a package index (PyPI or another), chosen by name and version
    URL = "url"  # a direct link to a wheel or source archive
    VCS = "vcs"  # a version-control repository (git+https://..., hg+..., ...)
    PATH = "path"  # a local directory, wheel or archive inside the app

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DeclaredRequirement:
    """One requirement as the app wrote it.

    ``text`` is the line to hand to a resolver or installer (pip, uv): the
    requirement without its ``-e`` flag and per-line options, with ``${VAR}``
    expanded and local paths made absolute. A local path is relative to the app
    directory, as pip and uv treat it when run from there (``-r`` and ``-c`` paths are
    relative to the including file instead; see ``requirements_txt``).

    ``requirement`` is the parsed PEP 508 form, or None for a line that is not PEP 508
    (a bare path such as ``./pkg`` or ``-e .``, or a URL with no name). ``name`` is the
    canonical project name, or None when it cannot be known without building.
    """

    text: str
    origin: Origin
    requirement: Optional[Requirement] = None
    name: Optional[str] = None
    source_kind: SourceKind = SourceKind.INDEX
    editable: bool = False
    hashes: Tuple[str, ...] = ()
    options: Tuple[str, ...] = ()  # other per-line options, e.g. --config-settings=...
    index_url: Optional[str] = None  # an index the file ties this one package to

    @property
    def marker(self) -> Optional[Marker]:
        """Return the environment marker, or None when the requirement has none."""
        return self.requirement.marker if self.requirement is not None else None


@dataclass(frozen=True)
class DeclaredValue:
    """A value from a dependency file (an index URL, an option) and where it was set."""

    value: str
    origin: Origin


@dataclass(frozen=True)
class IndexOptions:
    """Where packages may be found, and the other installer options a file sets.

    ``index_url`` is the last ``--index-url`` read, as pip takes the last one.
    ``pass_through_options`` are option lines for the installer in their long form
    with ``=``: ``--pre``, ``--prefer-binary``, ``--only-binary=:all:``,
    ``--no-binary=name``, ``--require-hashes``, ``--use-feature=...``.
    """

    index_url: Optional[DeclaredValue] = None
    extra_index_urls: Tuple[DeclaredValue, ...] = ()
    find_links: Tuple[DeclaredValue, ...] = ()
    trusted_hosts: Tuple[DeclaredValue, ...] = ()
    no_index: Optional[Origin] = None
    pass_through_options: Tuple[DeclaredValue, ...] = ()

    def is_empty(self) -> bool:
        """Return True when no index or option was declared."""
        return self == IndexOptions()


@dataclass(frozen=True)
class PackageSource:
    """Where a locked package is taken from.

    ``location`` is an index URL (``INDEX``), a file URL (``URL``), a repository URL
    with its ``git+`` style prefix (``VCS``) or an absolute path (``PATH``).
    ``reference`` is the commit (or, failing that, the ref) a VCS package is locked to.
    """

    kind: SourceKind
    location: str
    reference: Optional[str] = None
    subdirectory: Optional[str] = None
    editable: bool = False


@dataclass(frozen=True)
class LockedDependency:
    """An edge of a lock file's graph: a package needs ``name`` (when ``marker``)."""

    name: str
    marker: Optional[str] = None
    extras: Tuple[str, ...] = ()


@dataclass(frozen=True)
class LockedPackage:
    """A package pinned by a lock file.

    ``depends_on`` is None when the lock file does not record dependencies (as
    ``Pipfile.lock``); an empty tuple means the package needs nothing. ``marker`` is
    the environment marker the lock file keeps for the package itself, if any.
    """

    name: str
    version: Optional[str]
    source: PackageSource
    origin: Origin
    depends_on: Optional[Tuple[LockedDependency, ...]] = None
    marker: Optional[str] = None
    hashes: Tuple[str, ...] = ()

    def requirement_text(self) -> str:
        """Return the requirement that installs exactly this package.

        ``name==version`` for a package from an index, ``name @ <url>`` otherwise
        (for a path, a ``file://`` URL; an editable path still needs ``-e``).
        """
        source = self.source
        if source.kind is SourceKind.INDEX and self.version:
            return f"{self.name}=={self.version}"
        if source.kind is SourceKind.PATH:
            return f"{self.name} @ {Path(source.location).as_uri()}"
        url = source.location
        if source.kind is SourceKind.VCS and source.reference:
            url = f"{url}@{source.reference}"
        if source.subdirectory:
            url = f"{url}#subdirectory={source.subdirectory}"
        return f"{self.name} @ {url}"


_VERSION_TEXT = re.compile(r"^\d+(\.\d+){0,2}$")
_VERSION_PREFIX = re.compile(r"^(cpython|python)[-@]?", re.IGNORECASE)


@dataclass(frozen=True)
class PythonRequest:
    """The Python version an app asks for.

    ``text`` is the request as written (``3.12``, ``python-3.11.4``, ``>=3.10``), but
    Poetry's constraints are given converted to PEP 440 (``^3.11`` as
    ``>=3.11,<4.0.0``). ``specifier`` is the same request as a PEP 440 specifier set:
    a bare version ``3.12`` becomes ``==3.12.*``, ``3.12.1`` becomes ``==3.12.1``.
    """

    text: str
    specifier: SpecifierSet
    origin: Origin

    @classmethod
    def from_version_text(cls, text: str, origin: Origin) -> PythonRequest:
        """Read a ``.python-version`` or ``runtime.txt`` entry.

        Accepts ``3.12``, ``3.12.1``, ``python-3.12.1``, ``cpython@3.12`` and PEP 440
        specifiers such as ``>=3.11``. Raises :class:`BuildpackError` for anything
        else (``system``, ``pypy3.10``, ...).
        """
        written = text.strip()
        bare = _VERSION_PREFIX.sub("", written)
        if _VERSION_TEXT.match(bare):
            wildcard = "" if bare.count(".") == 2 else ".*"
            return cls(written, SpecifierSet(f"=={bare}{wildcard}"), origin)
        try:
            return cls(written, SpecifierSet(bare), origin)
        except InvalidSpecifier:
            raise BuildpackError(
                "Unsupported Python version request",
                f"{origin.path.name} asks for Python {written!r}, which is not a "
                "CPython version.",
                f"Write a version such as 3.12 or 3.12.4 in {origin.path.name}.",
                origin,
            ) from None

    @classmethod
    def from_specifier(cls, text: str, origin: Origin) -> PythonRequest:
        """Read a PEP 440 specifier such as ``requires-python``'s ``>=3.10``.

        Raises :class:`BuildpackError` naming ``origin`` when it is not valid PEP 440.
        """
        try:
            return cls(text, SpecifierSet(text), origin)
        except InvalidSpecifier:
            raise BuildpackError(
                "Invalid Python version range",
                f"{text!r} is not a valid version specifier.",
                "Write it as PEP 440 specifiers, for example >=3.10,<3.13.",
                origin,
            ) from None


@dataclass(frozen=True)
class Declaration:
    """Everything an app declares about its dependencies.

    ``files`` lists every file that was read, so the build can key its caches on
    their contents. ``locked_packages`` is None unless the source is a lock file; then
    it holds the packages to install (the main group only) and ``requirements`` holds
    the project's direct dependencies when the project file names them.
    ``python_requests`` are ordered from the strongest (``.python-version``) to the
    weakest (``requires-python``); :attr:`python_request` is the first.
    """

    kind: DeclarationKind
    app_dir: Path
    files: Tuple[Path, ...] = ()
    requirements: Tuple[DeclaredRequirement, ...] = ()
    constraints: Tuple[DeclaredRequirement, ...] = ()
    index_options: IndexOptions = field(default_factory=IndexOptions)
    locked_packages: Optional[Tuple[LockedPackage, ...]] = None
    python_requests: Tuple[PythonRequest, ...] = ()
    project_name: Optional[str] = None  # the app's own project, when it names one

    @property
    def python_request(self) -> Optional[PythonRequest]:
        """Return the strongest Python version request, or None when there is none."""
        return self.python_requests[0] if self.python_requests else None

    @property
    def is_locked(self) -> bool:
        """Return True when the packages to install come from a lock file."""
        return self.locked_packages is not None

    def package_names(self) -> FrozenSet[str]:
        """Return the canonical names the app asks to install.

        These are the direct requirements and, for a lock file, every locked package.
        Constraints are left out: they only limit versions.
        """
        names = {r.name for r in self.requirements if r.name}
        names.update(p.name for p in self.locked_packages or ())
        return frozenset(names)


def read_declaration(
    app_dir: Path, config: Config, env: Optional[Mapping[str, str]] = None
) -> Declaration:
    """Return the app's declaration, read from the source chosen as described above.

    ``env`` supplies the values of ``${VAR}`` in requirements files; it defaults to
    the process environment. Returns a declaration of kind ``NONE`` when the app has
    no dependency file. Raises :class:`BuildpackError` when the chosen file is missing,
    cannot be parsed, or is a lock file out of date with its project file.
    """
    # The readers import the model above, so they are imported here, not at the top.
    from . import lockfiles, pyproject, requirements_txt

    env = os.environ if env is None else env
    source = _choose_source(app_dir, config)
    if source is None:
        return _add_python_version_files(Declaration(DeclarationKind.NONE, app_dir))

    name = source.name
    if name == "uv.lock":
        declaration = lockfiles.read_uv_lock(source, app_dir)
    elif name == "poetry.lock":
        declaration = lockfiles.read_poetry_lock(source, app_dir)
    elif name == "Pipfile.lock":
        declaration = lockfiles.read_pipfile_lock(source, app_dir, env)
    elif name == "pyproject.toml":
        declaration = pyproject.read_pyproject(source, app_dir)
    else:
        declaration = requirements_txt.read_requirements(source, app_dir, env)
    return _add_python_version_files(declaration)


LOCK_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock")


def _choose_source(app_dir: Path, config: Config) -> Optional[Path]:
    if config.requirements_file:
        chosen = app_dir / config.requirements_file
        if not chosen.is_file():
            raise BuildpackError(
                "The configured requirements file does not exist",
                f"BP_ML_REQUIREMENTS_FILE={config.requirements_file} names "
                f"{chosen}, which is not a file.",
                "Give BP_ML_REQUIREMENTS_FILE a path relative to the app directory, or "
                "unset it to use requirements.txt, pyproject.toml or a lock file.",
            )
        return chosen
    for name in (*LOCK_FILES, "requirements.txt"):
        if (app_dir / name).is_file():
            return app_dir / name
    if (app_dir / "pyproject.toml").is_file():
        from .pyproject import declares_dependencies

        if declares_dependencies(app_dir / "pyproject.toml"):
            return app_dir / "pyproject.toml"
    return None


def _add_python_version_files(declaration: Declaration) -> Declaration:
    """Put the requests of ``.python-version`` and ``runtime.txt`` in front."""
    requests = []
    files = list(declaration.files)
    version_file = declaration.app_dir / ".python-version"
    if version_file.is_file():
        request = _read_python_version_file(version_file)
        if request is not None:
            requests.append(request)
        files.append(version_file)
    runtime_txt = declaration.app_dir / "runtime.txt"
    if runtime_txt.is_file():
        text = read_text(runtime_txt).strip()
        if text:
            requests.append(
                PythonRequest.from_version_text(text, Origin(runtime_txt, 1))
            )
        files.append(runtime_txt)
    requests.extend(declaration.python_requests)
    return replace(declaration, files=tuple(files), python_requests=tuple(requests))


def _read_python_version_file(path: Path) -> Optional[PythonRequest]:
    # Like pyenv and uv, the first entry counts; later lines name fallbacks.
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            return PythonRequest.from_version_text(entry, Origin(path, number))
    return None
