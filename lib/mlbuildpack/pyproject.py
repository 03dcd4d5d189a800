"""Reading the dependencies a ``pyproject.toml`` declares: PEP 621 or Poetry.

PEP 621: ``[project] dependencies`` and ``requires-python``. Where the file also
configures uv (``[[tool.uv.index]]``, ``[tool.uv.sources]``) or Poetry 2
(``[[tool.poetry.source]]`` and ``source`` keys in ``[tool.poetry.dependencies]``),
the index, git, URL or path each dependency is tied to is applied to it.

Poetry (``[tool.poetry.dependencies]`` with no ``[project] dependencies``): caret,
tilde, wildcard, exact and comparison constraints become PEP 440; tables may give
``version``, ``markers``, ``python``, ``extras``, ``git`` (with ``branch``, ``tag``
or ``rev`` and ``subdirectory``), ``url``, ``path`` (with ``develop``) and
``source``; a list of tables gives one requirement per entry. The ``python`` key is
the app's Python request. ``[[tool.poetry.source]]`` entries become index options:
the first primary (or legacy default) source replaces PyPI, later primary and
supplemental ones are extra indexes, and explicit ones serve only the dependencies that
name them.

Only what a plain install gets is read: PEP 621 ``optional-dependencies``, PEP 735
``dependency-groups``, Poetry groups (``[tool.poetry.group.*]``, the legacy
``dev-dependencies``) and Poetry dependencies marked ``optional`` are not installed by
default, so they are left out.

Not supported: Poetry's ``||`` (either-or) constraints, which PEP 440 cannot express;
they are an error unless a lock file pins the versions anyway.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.utils import canonicalize_name

from .declared import (
    PYPI_SIMPLE_URL,
    Declaration,
    DeclarationKind,
    DeclaredRequirement,
    DeclaredValue,
    IndexOptions,
    PythonRequest,
    SourceKind,
)
from .errors import BuildpackError, Origin
from .requirements_txt import parse_requirement
from .tomlcompat import line_of, parse_toml, read_text, table_header

POETRY_DEPENDENCIES = "tool.poetry.dependencies"


def declares_dependencies(path: Path) -> bool:
    """Return True when ``path`` has a ``[project]`` or ``[tool.poetry]`` table.

    A file that is not valid TOML counts as declaring, so that reading it reports the
    error instead of the app silently looking empty.
    """
    try:
        data = parse_toml(read_text(path), path)
    except BuildpackError:
        return True
    return "project" in data or "poetry" in data.get("tool", {})


def read_pyproject(
    path: Path, app_dir: Path, pinned_by_lock: bool = False
) -> Declaration:
    """Return the declaration made by ``pyproject.toml`` at ``path``.

    With ``pinned_by_lock`` set (a lock file beside it pins every version), a Poetry
    constraint that PEP 440 cannot express keeps only the package name instead of
    failing. Raises :class:`BuildpackError` with file and line for invalid TOML, a
    dependency that is not PEP 508, an unknown source name, or such a constraint.
    """
    text = read_text(path)
    data = parse_toml(text, path)
    reader = _PyprojectReader(path, app_dir, text, data, pinned_by_lock)
    return reader.read()


class _PyprojectReader:
    def __init__(
        self,
        path: Path,
        app_dir: Path,
        text: str,
        data: Dict[str, Any],
        pinned_by_lock: bool,
    ) -> None:
        self.path = path
        self.base = path.parent
        self.app_dir = app_dir
        self.text = text
        self.pinned_by_lock = pinned_by_lock
        self.project = _table(data, "project", path)
        tool = _table(data, "tool", path)
        self.poetry = _table(tool, "poetry", path)
        self.uv = _table(tool, "uv", path)

    def read(self) -> Declaration:
        poetry_dependencies = _table(self.poetry, "dependencies", self.path)
        uses_pep621 = "dependencies" in self.project or (
            self.project and not poetry_dependencies
        )
        indexes, named_indexes = self._indexes()
        if uses_pep621:
            kind = DeclarationKind.PYPROJECT_PEP621
            requirements = self._pep621_requirements(named_indexes)
            python = self._requires_python()
            name = self.project.get("name")
        else:
            kind = DeclarationKind.PYPROJECT_POETRY
            requirements = self._poetry_requirements(poetry_dependencies, named_indexes)
            python = self._poetry_python(poetry_dependencies)
            name = self.poetry.get("name")
        return Declaration(
            kind=kind,
            app_dir=self.app_dir,
            files=(self.path,),
            requirements=tuple(requirements),
            index_options=indexes,
            python_requests=(python,) if python else (),
            project_name=canonicalize_name(name) if isinstance(name, str) else None,
        )

    # --------------------------------------------------------------------- PEP 621

    def _pep621_requirements(
        self, named_indexes: Mapping[str, str]
    ) -> List[DeclaredRequirement]:
        dynamic = self.project.get("dynamic", [])
        is_dynamic = isinstance(dynamic, list) and "dependencies" in dynamic
        # Beside a lock file the lock gives the pins, so there they may be dynamic.
        if (
            is_dynamic
            and "dependencies" not in self.project
            and not self.pinned_by_lock
        ):
            raise BuildpackError(
                "Dependencies are computed by the build backend",
                "[project] lists dependencies in dynamic, so only the project's build "
                "backend can tell what they are; the buildpack does not run it.",
                "List them in [project] dependencies, or put them in a "
                "requirements.txt beside pyproject.toml (it is read first).",
                Origin(
                    self.path,
                    line_of(
                        self.text, r"^\s*dynamic\s*=", after=table_header("project")
                    ),
                ),
            )
        dependencies = self.project.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(
            isinstance(d, str) for d in dependencies
        ):
            raise self._error(
                "[project] dependencies must be a list of strings",
                "dependencies",
                'Write each dependency as a PEP 508 string, e.g. "torch>=2.3".',
            )
        header = table_header("project")
        found: List[DeclaredRequirement] = []
        for dependency in dependencies:
            line = line_of(self.text, re.escape(dependency), after=header) or line_of(
                self.text, r"^\s*dependencies\s*=", after=header
            )
            origin = Origin(self.path, line)
            declared = parse_requirement(dependency, origin, self.base)
            if declared.requirement is None:
                raise BuildpackError(
                    "Dependency is not a PEP 508 requirement",
                    f"{dependency!r} in [project] dependencies has no package name.",
                    "Write it as `name @ file:///path` or `name @ https://...`.",
                    origin,
                )
            found.extend(self._with_tool_sources(declared, named_indexes))
        return found

    def _requires_python(self) -> Optional[PythonRequest]:
        value = self.project.get("requires-python")
        if not isinstance(value, str):
            return None
        line = line_of(
            self.text, r"^\s*requires-python\s*=", after=table_header("project")
        )
        return PythonRequest.from_specifier(value, Origin(self.path, line))

    def _with_tool_sources(
        self, declared: DeclaredRequirement, named_indexes: Mapping[str, str]
    ) -> List[DeclaredRequirement]:
        """Apply ``[tool.uv.sources]`` or Poetry 2's per-dependency ``source``."""
        name = declared.name or ""
        uv_sources = {
            str(canonicalize_name(k)): (k, v)
            for k, v in _table(self.uv, "sources", self.path).items()
        }
        if name in uv_sources:
            key, entries = uv_sources[name]
            tables = entries if isinstance(entries, list) else [entries]
            if not tables or not all(isinstance(table, dict) for table in tables):
                line = line_of(
                    self.text,
                    rf"^\s*\"?{re.escape(key)}\"?\s*=",
                    after=table_header("tool.uv.sources"),
                )
                raise BuildpackError(
                    f"Unexpected source for {key} in {self.path.name}",
                    f"[tool.uv.sources] gives {key} {entries!r}, not a table.",
                    f'Give it a table such as {key} = {{ index = "name" }} or '
                    f'{{ git = "https://..." }}, or a list of such tables.',
                    Origin(self.path, line),
                )
            return [
                self._apply_source(declared, table, named_indexes, "index", "editable")
                for table in tables
            ]
        poetry_dependencies = {
            str(canonicalize_name(k)): v
            for k, v in _table(self.poetry, "dependencies", self.path).items()
        }
        extra = poetry_dependencies.get(name)
        if isinstance(extra, dict):
            return [
                self._apply_source(declared, extra, named_indexes, "source", "develop")
            ]
        return [declared]

    def _apply_source(
        self,
        declared: DeclaredRequirement,
        source: Mapping[str, Any],
        named_indexes: Mapping[str, str],
        index_key: str,
        editable_key: str,
    ) -> DeclaredRequirement:
        requirement = declared.requirement
        assert requirement is not None
        marker = str(requirement.marker) if requirement.marker else None
        if isinstance(source.get("marker"), str):
            marker = _and_markers(marker, source["marker"])
        reference = _direct_reference(source, self.base, editable_key)
        index_name = source.get(index_key)
        if reference is None and not isinstance(index_name, str):
            return declared
        extras = (
            f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        )
        if reference is not None:
            url, kind, editable = reference
            text = f"{requirement.name}{extras} @ {url}"
        else:
            kind, editable = SourceKind.INDEX, False
            text = f"{requirement.name}{extras}{requirement.specifier}"
        if marker:
            text += f" ; {marker}"
        index_url = self._index_url(index_name, named_indexes, declared.origin)
        return replace(
            declared,
            text=text,
            requirement=Requirement(text),
            source_kind=kind,
            editable=editable,
            index_url=index_url,
        )

    # ---------------------------------------------------------------------- Poetry

    def _poetry_requirements(
        self, dependencies: Mapping[str, Any], named_indexes: Mapping[str, str]
    ) -> List[DeclaredRequirement]:
        found: List[DeclaredRequirement] = []
        for key, spec in dependencies.items():
            if canonicalize_name(key) == "python":
                continue
            origin = Origin(self.path, self._poetry_line(key))
            entries = spec if isinstance(spec, list) else [spec]
            for entry in entries:
                declared = self._poetry_requirement(key, entry, origin, named_indexes)
                if declared is not None:
                    found.append(declared)
        return found

    def _poetry_requirement(
        self,
        name: str,
        spec: Any,
        origin: Origin,
        named_indexes: Mapping[str, str],
    ) -> Optional[DeclaredRequirement]:
        table: Mapping[str, Any] = {"version": spec} if isinstance(spec, str) else spec
        if not isinstance(table, dict):
            raise self._error(
                f"Dependency {name} has an unreadable value",
                name,
                "Give a version string or a table with version, git, url or path.",
                origin,
            )
        if table.get("optional") is True:
            return None  # installed only through an extra

        extras_list = table.get("extras") or []
        if isinstance(extras_list, str):  # extras = "cpu": one extra, not three
            extras_list = [extras_list]
        extras = f"[{','.join(extras_list)}]" if extras_list else ""
        marker = table.get("markers") if isinstance(table.get("markers"), str) else None
        if isinstance(table.get("python"), str):
            python = self._convert(table["python"], origin, f"{name}'s python")
            marker = _and_markers(marker, _python_marker(python))

        reference = _direct_reference(table, self.base, "develop")
        if reference is not None:
            url, kind, editable = reference
            text = f"{name}{extras} @ {url}"
        else:
            kind, editable = SourceKind.INDEX, False
            version = table.get("version", "*")
            text = f"{name}{extras}{self._convert(str(version), origin, name)}"
        if marker:
            text += f" ; {marker}"
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise self._error(
                f"Cannot read the Poetry dependency {name}",
                name,
                "Check its version, markers and extras.",
                origin,
                str(error),
            ) from None
        return DeclaredRequirement(
            text=text,
            origin=origin,
            requirement=requirement,
            name=canonicalize_name(name),
            source_kind=kind,
            editable=editable,
            index_url=self._index_url(table.get("source"), named_indexes, origin),
        )

    def _poetry_python(
        self, dependencies: Mapping[str, Any]
    ) -> Optional[PythonRequest]:
        for key, value in dependencies.items():
            if canonicalize_name(key) == "python" and isinstance(value, str):
                origin = Origin(self.path, self._poetry_line(key))
                converted = self._convert(value, origin, "python")
                return PythonRequest.from_specifier(converted, origin)
        return None

    def _poetry_line(self, key: str) -> Optional[int]:
        pattern = rf"^\s*[\"']?{re.escape(key)}[\"']?\s*="
        return line_of(self.text, pattern, after=table_header(POETRY_DEPENDENCIES)) or (
            line_of(self.text, table_header(f"{POETRY_DEPENDENCIES}.{key}"))
        )

    def _convert(self, constraint: str, origin: Origin, what: str) -> str:
        try:
            return poetry_constraint_to_pep440(constraint)
        except ValueError as error:
            if self.pinned_by_lock:
                return ""
            raise self._error(
                f"Cannot convert the Poetry constraint of {what}",
                what,
                "Use a single range (such as ^2.3 or >=2.3,<3), or commit a "
                "poetry.lock, which pins exact versions.",
                origin,
                str(error),
            ) from None

    # --------------------------------------------------------------------- indexes

    def _indexes(self) -> Tuple[IndexOptions, Dict[str, str]]:
        """Return the index options and the URL of every named index."""
        index_url: Optional[DeclaredValue] = None
        extra: List[DeclaredValue] = []
        named: Dict[str, str] = {}
        for source in _list_of_tables(self.poetry.get("source")):
            name, url = source.get("name"), source.get("url")
            if not isinstance(name, str):
                continue
            if not isinstance(url, str):
                if name.lower() != "pypi":
                    continue
                url = PYPI_SIMPLE_URL
            named[name] = url
            value = DeclaredValue(url, Origin(self.path, self._line_of_value(url)))
            priority = _poetry_priority(source)
            if priority in ("primary", "default") and index_url is None:
                index_url = value
            elif priority != "explicit":
                extra.append(value)
        for index in _list_of_tables(self.uv.get("index")):
            name, url = index.get("name"), index.get("url")
            if not isinstance(url, str):
                continue
            if isinstance(name, str):
                named[name] = url
            value = DeclaredValue(url, Origin(self.path, self._line_of_value(url)))
            if index.get("default") is True:
                index_url = value
            elif index.get("explicit") is not True:
                # uv searches these before PyPI, in this order.
                extra.append(value)
        return IndexOptions(index_url=index_url, extra_index_urls=tuple(extra)), named

    def _index_url(
        self, name: Any, named_indexes: Mapping[str, str], origin: Origin
    ) -> Optional[str]:
        if not isinstance(name, str):
            return None
        if name in named_indexes:
            return named_indexes[name]
        known = ", ".join(sorted(named_indexes)) or "none"
        raise BuildpackError(
            "Dependency names an unknown package source",
            f"The dependency takes its package from source {name!r}, but "
            f"pyproject.toml defines no source of that name (defined: {known}).",
            "Add the source ([[tool.poetry.source]] or [[tool.uv.index]]) with that "
            "name, or correct the name.",
            origin,
        )

    def _line_of_value(self, value: str) -> Optional[int]:
        return line_of(self.text, re.escape(f'"{value}"')) or line_of(
            self.text, re.escape(value)
        )

    def _error(
        self,
        title: str,
        key: str,
        fix: str,
        origin: Optional[Origin] = None,
        detail: Optional[str] = None,
    ) -> BuildpackError:
        where = origin or Origin(self.path, line_of(self.text, re.escape(key)))
        cause = f"{title}: {detail}." if detail else f"{title}."
        return BuildpackError(title, cause, fix, where)


# ------------------------------------------------------------- Poetry constraints

_OPERATOR_SPACE = re.compile(r"(\^|~=|~|===|==|!=|>=|<=|>|<|=)\s+")
_PART = re.compile(r"^(?P<op>\^|~=|~|===|==|!=|>=|<=|>|<|=)?(?P<version>.+)$")
_RELEASE = re.compile(r"^(?P<release>\d+(?:\.\d+)*)(?P<rest>.*)$")


def poetry_constraint_to_pep440(constraint: str) -> str:
    """Return Poetry version ``constraint`` as a PEP 440 specifier string.

    ``^1.2.3`` becomes ``>=1.2.3,<2.0.0`` (``^0.2.3``: ``<0.3.0``; ``^0.0.3``:
    ``<0.0.4``), ``~1.2.3`` becomes ``>=1.2.3,<1.3.0``, ``1.2.*`` becomes
    ``==1.2.*``, a bare ``1.2.3`` becomes ``==1.2.3``, and ``*`` or an empty string
    becomes the empty specifier. Constraints separated by commas or spaces all apply.
    Raises ValueError for ``||`` (either-or) constraints and for text that is not a
    version constraint.
    """
    text = constraint.strip()
    if "|" in text:
        raise ValueError(f"{constraint!r} is an either-or (||) constraint")
    text = _OPERATOR_SPACE.sub(r"\1", text)
    converted: List[str] = []
    for part in filter(None, re.split(r"[,\s]+", text)):
        converted.extend(_convert_part(part, constraint))
    result = ",".join(converted)
    try:
        SpecifierSet(result)
    except InvalidSpecifier:
        raise ValueError(f"{constraint!r} is not a version constraint") from None
    return result


def _convert_part(part: str, constraint: str) -> List[str]:
    if part == "*":
        return []
    found = _PART.match(part)
    if not found:
        raise ValueError(f"{constraint!r} is not a version constraint")
    operator, version = found.group("op") or "", found.group("version")
    if version.endswith((".*", ".x", ".X")) and operator in ("", "=", "=="):
        return [f"=={version[:-2]}.*"]
    if operator in ("^", "~"):
        release = _RELEASE.match(version)
        if not release:
            raise ValueError(f"{constraint!r} is not a version constraint")
        numbers = [int(n) for n in release.group("release").split(".")]
        upper = _caret_upper(numbers) if operator == "^" else _tilde_upper(numbers)
        # PEP 440 allows a local label (+cpu) only with == and !=.
        return [f">={version.split('+', 1)[0]}", f"<{upper}"]
    if operator in ("", "="):
        return [f"=={version}"]
    return [f"{operator}{version}"]


def _caret_upper(numbers: List[int]) -> str:
    # The first non-zero number among those written is the one that may not change.
    written = (numbers + [0, 0])[:3]
    if len(numbers) == 1 or written[0] > 0:
        return f"{written[0] + 1}.0.0"
    if len(numbers) == 2 or written[1] > 0:
        return f"0.{written[1] + 1}.0"
    return f"0.0.{written[2] + 1}"


def _tilde_upper(numbers: List[int]) -> str:
    if len(numbers) == 1:
        return f"{numbers[0] + 1}.0.0"
    return f"{numbers[0]}.{numbers[1] + 1}.0"


def _python_marker(specifiers: str) -> str:
    """Return a marker that holds on the Pythons ``specifiers`` (PEP 440) allows."""
    parts = []
    for specifier in SpecifierSet(specifiers):
        assert isinstance(specifier, Specifier)
        version = specifier.version
        release = version[:-2] if version.endswith(".*") else version
        variable = (
            "python_full_version" if release.count(".") >= 2 else "python_version"
        )
        parts.append(f'{variable} {specifier.operator} "{version}"')
    return " and ".join(sorted(parts))


def _and_markers(first: Optional[str], second: Optional[str]) -> Optional[str]:
    if not first or not second:
        return first or second
    return f"({first}) and ({second})"


# --------------------------------------------------------------- shared helpers


def _direct_reference(
    table: Mapping[str, Any], base: Path, editable_key: str
) -> Optional[Tuple[str, SourceKind, bool]]:
    """Return ``(url, kind, editable)`` for a git, url or path table, else None."""
    if isinstance(table.get("git"), str):
        url = table["git"]
        if url.startswith("git@"):
            # scp-like form, git@host:owner/repo.git
            host, _, repo = url[len("git@") :].partition(":")
            url = f"ssh://git@{host}/{repo}"
        url = url if url.startswith("git+") else f"git+{url}"
        for ref_key in ("rev", "tag", "branch"):
            if isinstance(table.get(ref_key), str):
                url += f"@{table[ref_key]}"
                break
        if isinstance(table.get("subdirectory"), str):
            url += f"#subdirectory={table['subdirectory']}"
        return url, SourceKind.VCS, False
    if isinstance(table.get("url"), str):
        return table["url"], SourceKind.URL, False
    if isinstance(table.get("path"), str):
        path = (base / table["path"]).resolve()
        return path.as_uri(), SourceKind.PATH, table.get(editable_key) is True
    return None


def _poetry_priority(source: Mapping[str, Any]) -> str:
    priority = source.get("priority")
    if isinstance(priority, str):
        return priority
    if source.get("default") is True:
        return "default"
    if source.get("secondary") is True:
        return "supplemental"
    return "primary"


def _table(data: Mapping[str, Any], key: str, path: Path) -> Dict[str, Any]:
    value = data.get(key, {})
    if isinstance(value, dict):
        return value
    raise BuildpackError(
        f"Unexpected value for {key} in {path.name}",
        f"{key} should be a table in {path.name}.",
        f"Make {key} a TOML table.",
        Origin(path),
    )


def _list_of_tables(value: Any) -> List[Dict[str, Any]]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []
