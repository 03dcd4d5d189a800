"""Reading lock files: ``uv.lock``, ``poetry.lock`` and ``Pipfile.lock``.

Each reader returns a :class:`Declaration` whose ``locked_packages`` are what a
production install of the app gets, and no more:

- ``uv.lock`` (format version 1): the packages reachable from the app's own project
  through its ``dependencies``, following the extras each edge asks for. Development
  groups and the project's optional dependencies are left out, as ``uv sync --no-dev``
  leaves them out. The project itself (its ``virtual`` or ``editable`` source at
  ``.``) is not a package to install; other workspace members it needs are, as
  editable paths. Sources: registry, url, git, path, directory, editable.
- ``poetry.lock``: the packages of the main group, taken from ``groups`` (lock 2.1) or
  ``category`` (lock 1.x); lock 2.0 records neither, so the main dependencies of
  ``pyproject.toml`` are followed through the lock's graph instead.
- ``Pipfile.lock``: the ``default`` section; ``develop`` is left out. Each package's
  ``index`` name is mapped to its URL through ``_meta.sources``. The lock records no
  dependency edges, so ``depends_on`` is None.

Reachability ignores environment markers: a package needed only on another platform is
listed with the markers of the edges that lead to it, and the build decides.

A lock file out of date with its project file (a dependency of ``pyproject.toml`` or
``Pipfile`` that the lock does not contain, or, for ``uv.lock``, a changed version
range) is an error naming the line, since installing it would not give the app what it
declares. Poetry's and Pipfile's content hashes are not checked: their algorithms
change between tool versions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from .declared import (
    PYPI_SIMPLE_URL,
    Declaration,
    DeclarationKind,
    DeclaredValue,
    IndexOptions,
    LockedDependency,
    LockedPackage,
    PackageSource,
    PythonRequest,
    SourceKind,
)
from .errors import BuildpackError, Origin
from .pyproject import poetry_constraint_to_pep440, read_pyproject
from .tomlcompat import line_of, parse_toml, read_text

UV_LOCK_VERSION = 1
_PACKAGE_HEADER = re.compile(r"^\s*\[\[\s*package\s*\]\]\s*(#.*)?$")


# ----------------------------------------------------------------------------- uv.lock


def read_uv_lock(path: Path, app_dir: Path) -> Declaration:
    """Return the declaration of ``uv.lock`` at ``path`` and its ``pyproject.toml``.

    Raises :class:`BuildpackError` with file and line when the lock is not valid
    TOML, has a format version other than 1, is inconsistent (an edge to a package it
    does not contain), or is out of date with ``pyproject.toml``.
    """
    text = read_text(path)
    data = parse_toml(text, path)
    version = data.get("version")
    if version != UV_LOCK_VERSION:
        raise BuildpackError(
            "Unsupported uv.lock format",
            f"uv.lock says version = {version!r}; this buildpack reads version "
            f"{UV_LOCK_VERSION}.",
            "Run `uv lock` with a uv release that writes format version 1, and commit "
            "uv.lock.",
            Origin(path, line_of(text, r"^\s*version\s*=")),
        )

    entries = _entries(path, text, data.get("package", []))
    graph = _UvGraph(path, app_dir, entries)
    project = _project_beside(path, app_dir)
    if project is not None and project.kind is DeclarationKind.PYPROJECT_PEP621:
        _check_uv_lock_is_current(path, app_dir, graph.roots, project)

    python_requests: Tuple[PythonRequest, ...] = ()
    if project is not None and project.python_requests:
        python_requests = project.python_requests
    elif isinstance(data.get("requires-python"), str):
        origin = Origin(path, line_of(text, r"^\s*requires-python\s*="))
        python_requests = (
            PythonRequest.from_specifier(data["requires-python"], origin),
        )
    return _declaration(
        DeclarationKind.UV_LOCK,
        path,
        app_dir,
        graph.installed(),
        project,
        python_requests,
    )


@dataclass
class _Entry:
    """One ``[[package]]`` table and the line of its header."""

    raw: Dict[str, Any]
    origin: Origin
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = canonicalize_name(str(self.raw.get("name", "")))


def _entries(path: Path, text: str, raw_packages: Any) -> List[_Entry]:
    if not isinstance(raw_packages, list):
        raise _unreadable(path, None, "[[package]] must be an array of tables")
    headers = [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if _PACKAGE_HEADER.match(line)
    ]
    entries = []
    for index, raw in enumerate(raw_packages):
        line = headers[index] if index < len(headers) else None
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise _unreadable(path, line, "a [[package]] entry has no name")
        entries.append(_Entry(raw, Origin(path, line)))
    return entries


class _UvGraph:
    """The packages of a ``uv.lock`` and which of them the app's project needs."""

    def __init__(self, path: Path, app_dir: Path, entries: List[_Entry]) -> None:
        self.path = path
        self.lock_dir = path.parent
        self.app_dir = app_dir
        self.entries = entries
        self.by_name: Dict[str, List[_Entry]] = {}
        for entry in entries:
            self.by_name.setdefault(entry.name, []).append(entry)
        self.roots = [e for e in entries if self._is_project_root(e)]
        if not self.roots:
            # A workspace whose root has no project of its own: every member counts.
            self.roots = [e for e in entries if _source_path(e.raw) is not None]

    def _is_project_root(self, entry: _Entry) -> bool:
        location = _source_path(entry.raw)
        return location is not None and (self.lock_dir / location).resolve() == (
            self.lock_dir.resolve()
        )

    def installed(self) -> Tuple[LockedPackage, ...]:
        """Return the packages the project needs, in the lock file's order."""
        if not self.roots:
            activated = {id(e): set() for e in self.entries}  # type: Dict[int, Set[str]]
        else:
            activated = self._reachable()
        packages = []
        for entry in self.entries:
            if id(entry) not in activated or entry in self.roots:
                continue
            if "virtual" in entry.raw.get("source", {}):
                continue  # a virtual member has nothing to install but its needs
            packages.append(self._package(entry, activated[id(entry)]))
        return tuple(packages)

    def _reachable(self) -> Dict[int, Set[str]]:
        """Return the id of every needed entry and the extras asked of it."""
        activated: Dict[int, Set[str]] = {}
        pending = [(root, edge) for root in self.roots for edge in _edges(root.raw)]
        while pending:
            parent, edge = pending.pop()
            target = self._target(parent, edge)
            extras = {str(e) for e in edge.get("extra", []) or []}
            seen = activated.get(id(target))
            if seen is not None and extras <= seen:
                continue
            new_extras = extras - (seen or set())
            first_visit = seen is None
            activated[id(target)] = (seen or set()) | extras
            followed = list(_edges(target.raw)) if first_visit else []
            optional = target.raw.get("optional-dependencies", {}) or {}
            for extra in new_extras:
                followed.extend(
                    d for d in optional.get(extra, []) if isinstance(d, dict)
                )
            pending.extend((target, next_edge) for next_edge in followed)
        return activated

    def _target(self, parent: _Entry, edge: Dict[str, Any]) -> _Entry:
        name = canonicalize_name(str(edge.get("name", "")))
        candidates = self.by_name.get(name, [])
        if len(candidates) > 1 and "version" in edge:
            candidates = [
                c for c in candidates if c.raw.get("version") == edge["version"]
            ]
        if len(candidates) > 1 and "source" in edge:
            candidates = [
                c for c in candidates if c.raw.get("source") == edge["source"]
            ]
        if not candidates:
            raise _unreadable(
                self.path,
                parent.origin.line,
                f"{parent.name} depends on {name}, which the lock does not contain",
            )
        return candidates[0]

    def _package(self, entry: _Entry, extras: Set[str]) -> LockedPackage:
        raw = entry.raw
        edges = list(_edges(raw))
        optional = raw.get("optional-dependencies", {}) or {}
        for extra in sorted(extras):
            edges.extend(d for d in optional.get(extra, []) if isinstance(d, dict))
        markers = [m for m in raw.get("resolution-markers", []) if isinstance(m, str)]
        hashes = [raw.get("sdist", {}).get("hash")] + [
            wheel.get("hash")
            for wheel in raw.get("wheels", [])
            if isinstance(wheel, dict)
        ]
        return LockedPackage(
            name=entry.name,
            version=raw.get("version") if isinstance(raw.get("version"), str) else None,
            source=self._source(entry),
            origin=entry.origin,
            depends_on=tuple(
                LockedDependency(
                    name=canonicalize_name(str(edge.get("name", ""))),
                    marker=edge.get("marker")
                    if isinstance(edge.get("marker"), str)
                    else None,
                    extras=tuple(str(e) for e in edge.get("extra", []) or []),
                )
                for edge in edges
            ),
            marker=_any_of(markers),
            hashes=tuple(h for h in hashes if isinstance(h, str)),
        )

    def _source(self, entry: _Entry) -> PackageSource:
        source = entry.raw.get("source", {})
        if not isinstance(source, dict):
            source = {}
        if isinstance(source.get("registry"), str):
            registry = source["registry"]
            if not _is_url(registry):
                registry = str((self.lock_dir / registry).resolve())
            return PackageSource(SourceKind.INDEX, registry)
        if isinstance(source.get("url"), str):
            return PackageSource(SourceKind.URL, source["url"])
        if isinstance(source.get("git"), str):
            return _uv_git_source(source["git"])
        for key in ("path", "directory", "editable"):
            if isinstance(source.get(key), str):
                location = str((self.lock_dir / source[key]).resolve())
                return PackageSource(
                    SourceKind.PATH, location, editable=key == "editable"
                )
        raise _unreadable(self.path, entry.origin.line, f"{entry.name} has no source")


def _edges(raw: Mapping[str, Any]) -> List[Dict[str, Any]]:
    return [d for d in raw.get("dependencies", []) or [] if isinstance(d, dict)]


def _source_path(raw: Mapping[str, Any]) -> Optional[str]:
    """Return the path of a workspace member (virtual or editable source), else None."""
    source = raw.get("source", {})
    if not isinstance(source, dict):
        return None
    for key in ("virtual", "editable"):
        if isinstance(source.get(key), str):
            return source[key]
    return None


def _uv_git_source(url: str) -> PackageSource:
    """Read uv's ``https://host/repo?rev=v1#<commit>`` form."""
    address, _, commit = url.partition("#")
    address, _, query = address.partition("?")
    parameters = dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)
    reference = commit or next(
        (parameters[k] for k in ("rev", "tag", "branch") if k in parameters), None
    )
    location = address if address.startswith("git+") else f"git+{address}"
    return PackageSource(
        SourceKind.VCS, location, reference, parameters.get("subdirectory")
    )


def _check_uv_lock_is_current(
    path: Path, app_dir: Path, roots: List[_Entry], project: Declaration
) -> None:
    root = next((r for r in roots if r.name == project.project_name), None)
    metadata = (root.raw.get("metadata") if root else None) or {}
    requires = metadata.get("requires-dist")
    if root is None or not isinstance(requires, list):
        return  # nothing recorded to compare with

    locked: Dict[str, Set[SpecifierSet]] = {}
    name: str
    for item in requires:
        if not isinstance(item, dict) or "extra ==" in str(item.get("marker", "")):
            continue  # optional dependencies are not in [project] dependencies
        name = canonicalize_name(str(item.get("name", "")))
        locked.setdefault(name, set()).add(_specifier(item.get("specifier")))
    declared: Dict[str, Set[SpecifierSet]] = {}
    for requirement in project.requirements:
        if requirement.name and requirement.requirement is not None:
            declared.setdefault(requirement.name, set()).add(
                requirement.requirement.specifier
            )

    for requirement in project.requirements:
        name = requirement.name or ""
        if name not in locked:
            raise _stale(
                path,
                app_dir,
                requirement.origin,
                f"pyproject.toml asks for {name}, which uv.lock does not contain",
                "uv lock",
            )
        if declared[name] != locked[name]:
            wanted = ", ".join(sorted(str(s) or "any version" for s in declared[name]))
            has = ", ".join(sorted(str(s) or "any version" for s in locked[name]))
            raise _stale(
                path,
                app_dir,
                requirement.origin,
                f"pyproject.toml asks for {name} {wanted}, but uv.lock was made for "
                f"{name} {has}",
                "uv lock",
            )
    if project.requirements:
        for name in sorted(set(locked) - set(declared)):
            raise _stale(
                path,
                app_dir,
                root.origin,
                f"uv.lock still lists {name} as a dependency of the project, but "
                "pyproject.toml no longer asks for it",
                "uv lock",
            )


def _specifier(value: Any) -> SpecifierSet:
    try:
        return SpecifierSet(value if isinstance(value, str) else "")
    except InvalidSpecifier:
        return SpecifierSet()


# ------------------------------------------------------------------------- poetry.lock


def read_poetry_lock(path: Path, app_dir: Path) -> Declaration:
    """Return the declaration of ``poetry.lock`` at ``path`` and its ``pyproject.toml``.

    Raises :class:`BuildpackError` with file and line when the lock is not valid TOML
    or misses a dependency that ``pyproject.toml`` declares.
    """
    text = read_text(path)
    data = parse_toml(text, path)
    entries = _entries(path, text, data.get("package", []))
    metadata = (
        data.get("metadata", {}) if isinstance(data.get("metadata"), dict) else {}
    )
    project = _project_beside(path, app_dir)

    locked_names = {e.name for e in entries}
    for requirement in project.requirements if project else ():
        if requirement.name and requirement.name not in locked_names:
            raise _stale(
                path,
                app_dir,
                requirement.origin,
                f"pyproject.toml asks for {requirement.name}, which poetry.lock does "
                "not contain",
                "poetry lock",
            )

    main = _poetry_main_entries(entries, project)
    files_by_name = (
        metadata.get("files", {}) if isinstance(metadata.get("files"), dict) else {}
    )
    packages = tuple(
        _poetry_package(e, path.parent, files_by_name) for e in entries if id(e) in main
    )

    python_requests: Tuple[PythonRequest, ...] = ()
    if project is not None and project.python_requests:
        python_requests = project.python_requests
    elif isinstance(metadata.get("python-versions"), str):
        origin = Origin(
            path, line_of(text, r"^\s*python-versions\s*=", after=r"^\[metadata\]")
        )
        try:
            converted = poetry_constraint_to_pep440(metadata["python-versions"])
            python_requests = (PythonRequest.from_specifier(converted, origin),)
        except ValueError:
            pass  # a range PEP 440 cannot express only loses the Python hint
    return _declaration(
        DeclarationKind.POETRY_LOCK, path, app_dir, packages, project, python_requests
    )


def _poetry_main_entries(
    entries: List[_Entry], project: Optional[Declaration]
) -> Set[int]:
    if any("groups" in e.raw for e in entries):
        return {id(e) for e in entries if "main" in (e.raw.get("groups") or [])}
    if any("category" in e.raw for e in entries):
        return {id(e) for e in entries if e.raw.get("category", "main") == "main"}
    if project is None:
        return {id(e) for e in entries}

    # Lock 2.0 says nothing about groups: follow the main dependencies instead.
    by_name = {e.name: e for e in entries}
    wanted: Dict[str, Set[str]] = {}
    pending: List[Tuple[str, Set[str]]] = [
        (r.name, set(r.requirement.extras) if r.requirement else set())
        for r in project.requirements
        if r.name
    ]
    while pending:
        name, extras = pending.pop()
        entry = by_name.get(name)
        if entry is None:
            continue
        seen = wanted.get(name)
        if seen is not None and extras <= seen:
            continue
        wanted[name] = (seen or set()) | extras
        for dependency, spec in _poetry_edges(entry.raw):
            if not spec.get("optional"):
                pending.append((dependency, set(spec.get("extras") or [])))
        extra_table = entry.raw.get("extras", {}) or {}
        for extra in extras:
            for item in extra_table.get(extra, []):
                pending.append((_name_of_extra_item(str(item)), set()))
    return {id(by_name[name]) for name in wanted}


def _poetry_edges(raw: Mapping[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    edges: List[Tuple[str, Dict[str, Any]]] = []
    for name, spec in (raw.get("dependencies", {}) or {}).items():
        for item in spec if isinstance(spec, list) else [spec]:
            table = item if isinstance(item, dict) else {"version": item}
            edges.append((canonicalize_name(name), table))
    return edges


def _name_of_extra_item(item: str) -> str:
    # Items read like "opt-einsum (>=3.3)" or "torch[cpu] ; python_version < '3.12'".
    return canonicalize_name(re.split(r"[\s(\[;<>=!~]", item.strip(), maxsplit=1)[0])


def _poetry_package(
    entry: _Entry, lock_dir: Path, files_by_name: Mapping[str, Any]
) -> LockedPackage:
    raw = entry.raw
    markers = raw.get("markers")
    if isinstance(markers, dict):
        markers = markers.get("main")
    files = raw.get("files") or files_by_name.get(raw["name"]) or []
    return LockedPackage(
        name=entry.name,
        version=str(raw["version"]) if "version" in raw else None,
        source=_poetry_source(raw.get("source"), lock_dir),
        origin=entry.origin,
        depends_on=tuple(
            LockedDependency(
                name=name,
                marker=spec.get("markers")
                if isinstance(spec.get("markers"), str)
                else None,
                extras=tuple(spec.get("extras") or ()),
            )
            for name, spec in _poetry_edges(raw)
        ),
        marker=markers if isinstance(markers, str) else None,
        hashes=tuple(
            f["hash"]
            for f in files
            if isinstance(f, dict) and isinstance(f.get("hash"), str)
        ),
    )


def _poetry_source(source: Any, lock_dir: Path) -> PackageSource:
    if not isinstance(source, dict):
        return PackageSource(SourceKind.INDEX, PYPI_SIMPLE_URL)
    kind, url = source.get("type"), str(source.get("url", ""))
    if kind == "git":
        location = url if url.startswith("git+") else f"git+{url}"
        reference = source.get("resolved_reference") or source.get("reference")
        return PackageSource(
            SourceKind.VCS, location, reference, source.get("subdirectory")
        )
    if kind == "url":
        return PackageSource(SourceKind.URL, url)
    if kind in ("file", "directory"):
        location = str((lock_dir / url).resolve())
        editable = kind == "directory" and source.get("develop") is True
        return PackageSource(SourceKind.PATH, location, editable=editable)
    return PackageSource(SourceKind.INDEX, url or PYPI_SIMPLE_URL)


# ------------------------------------------------------------------------ Pipfile.lock


def read_pipfile_lock(
    path: Path, app_dir: Path, env: Optional[Mapping[str, str]] = None
) -> Declaration:
    """Return the declaration of ``Pipfile.lock`` at ``path``.

    Only the ``default`` section is read. Raises :class:`BuildpackError` with file
    and line when the lock is not valid JSON, names an index it does not define, or
    misses a package that ``Pipfile``'s ``[packages]`` lists.
    """
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _unreadable(
            path, error.lineno, f"it is not valid JSON: {error.msg}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("default", {}), dict):
        raise _unreadable(path, None, 'it has no "default" object')
    meta = data.get("_meta", {}) if isinstance(data.get("_meta"), dict) else {}
    sources = [s for s in meta.get("sources", []) if isinstance(s, dict)]
    # pipenv expands $NAME and ${NAME} in source URLs (credentials are kept out of
    # the lock that way); an unset variable stays as written, as it does there.
    written = {
        str(s.get("name")): str(s["url"])
        for s in sources
        if isinstance(s.get("url"), str)
    }
    index_urls = {
        name: _PIPENV_VARIABLE.sub(
            lambda found: (env or {}).get(
                found.group(1) or found.group(2), found.group(0)
            ),
            url,
        )
        for name, url in written.items()
    }
    default_index = next(iter(index_urls.values()), PYPI_SIMPLE_URL)

    packages = []
    default_section = r'^\s*"default"\s*:'
    for name, entry in data.get("default", {}).items():
        line = line_of(text, rf'^\s*"{re.escape(name)}"\s*:', after=default_section)
        origin = Origin(path, line)
        if not isinstance(entry, dict):
            raise _unreadable(path, line, f"the entry for {name} is not an object")
        version = entry.get("version")
        packages.append(
            LockedPackage(
                name=canonicalize_name(name),
                version=version.lstrip("=") if isinstance(version, str) else None,
                source=_pipfile_source(entry, path, origin, index_urls, default_index),
                origin=origin,
                depends_on=None,
                marker=entry.get("markers")
                if isinstance(entry.get("markers"), str)
                else None,
                hashes=tuple(h for h in entry.get("hashes", []) if isinstance(h, str)),
            )
        )

    pipfile = path.parent / "Pipfile"
    if pipfile.is_file():
        _check_pipfile_lock_is_current(
            pipfile, path, app_dir, {p.name for p in packages}
        )

    python_requests: Tuple[PythonRequest, ...] = ()
    requires = (
        meta.get("requires", {}) if isinstance(meta.get("requires"), dict) else {}
    )
    for key in ("python_full_version", "python_version"):
        if isinstance(requires.get(key), str):
            origin = Origin(path, line_of(text, rf'^\s*"{key}"\s*:'))
            python_requests = (PythonRequest.from_version_text(requires[key], origin),)
            break

    options = IndexOptions()
    if sources and isinstance(sources[0].get("url"), str):
        origins = [
            Origin(path, line_of(text, re.escape(f'"{url}"')))
            for url in written.values()
        ]
        values = [DeclaredValue(url, o) for url, o in zip(index_urls.values(), origins)]
        options = IndexOptions(index_url=values[0], extra_index_urls=tuple(values[1:]))
    files = (path, pipfile) if pipfile.is_file() else (path,)
    return Declaration(
        kind=DeclarationKind.PIPFILE_LOCK,
        app_dir=app_dir,
        files=files,
        index_options=options,
        locked_packages=tuple(packages),
        python_requests=python_requests,
    )


def _pipfile_source(
    entry: Mapping[str, Any],
    path: Path,
    origin: Origin,
    index_urls: Mapping[str, str],
    default_index: str,
) -> PackageSource:
    if isinstance(entry.get("git"), str):
        url = entry["git"]
        location = url if url.startswith("git+") else f"git+{url}"
        return PackageSource(
            SourceKind.VCS, location, entry.get("ref"), entry.get("subdirectory")
        )
    if isinstance(entry.get("file"), str):
        url = entry["file"]
        if _is_url(url):
            return PackageSource(SourceKind.URL, url)
        return PackageSource(SourceKind.PATH, str((path.parent / url).resolve()))
    if isinstance(entry.get("path"), str):
        location = str((path.parent / entry["path"]).resolve())
        return PackageSource(
            SourceKind.PATH, location, editable=entry.get("editable") is True
        )
    index = entry.get("index")
    if isinstance(index, str):
        if index not in index_urls:
            raise _unreadable(
                path,
                origin.line,
                f"it names the index {index!r}, which _meta.sources does not define",
            )
        return PackageSource(SourceKind.INDEX, index_urls[index])
    return PackageSource(SourceKind.INDEX, default_index)


def _check_pipfile_lock_is_current(
    pipfile: Path, lock: Path, app_dir: Path, locked: Set[str]
) -> None:
    text = read_text(pipfile)
    packages = parse_toml(text, pipfile).get("packages", {})
    for name in packages if isinstance(packages, dict) else {}:
        if canonicalize_name(name) not in locked:
            line = line_of(
                text, rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=", after=r"^\[packages\]"
            )
            raise _stale(
                lock,
                app_dir,
                Origin(pipfile, line),
                f"Pipfile asks for {name}, which Pipfile.lock does not contain",
                "pipenv lock",
            )


# ---------------------------------------------------------------------------- shared


def _project_beside(lock: Path, app_dir: Path) -> Optional[Declaration]:
    pyproject = lock.parent / "pyproject.toml"
    if not pyproject.is_file():
        return None
    return read_pyproject(pyproject, app_dir, pinned_by_lock=True)


def _declaration(
    kind: DeclarationKind,
    lock: Path,
    app_dir: Path,
    packages: Tuple[LockedPackage, ...],
    project: Optional[Declaration],
    python_requests: Tuple[PythonRequest, ...],
) -> Declaration:
    return Declaration(
        kind=kind,
        app_dir=app_dir,
        files=(lock, *(project.files if project else ())),
        requirements=project.requirements if project else (),
        index_options=project.index_options if project else IndexOptions(),
        locked_packages=packages,
        python_requests=python_requests,
        project_name=project.project_name if project else None,
    )


def _any_of(markers: List[str]) -> Optional[str]:
    if not markers:
        return None
    if len(markers) == 1:
        return markers[0]
    return " or ".join(f"({m})" for m in markers)


def _is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text))


_PIPENV_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _unreadable(path: Path, line: Optional[int], reason: str) -> BuildpackError:
    return BuildpackError(
        f"Cannot read {path.name}",
        f"{path.name} cannot be used: {reason}.",
        f"Regenerate {path.name} with the tool that made it, and commit it.",
        Origin(path, line),
    )


def _stale(
    lock: Path, app_dir: Path, origin: Origin, reason: str, command: str
) -> BuildpackError:
    return BuildpackError(
        f"{lock.name} is out of date",
        f"{reason}.",  # it starts with a file name, whose case is its own
        f"Run `{command}` and commit the updated {lock.name}.",
        origin,
    )
