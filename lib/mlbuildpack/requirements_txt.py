"""Reading pip requirements files the way pip reads them.

Supported, with pip's meaning:

- comments (``#`` at the start or after whitespace) and ``\\`` line continuations;
- ``${VAR}`` expanded from the environment (upper-case names only, as pip does; an
  unset variable is left as written);
- ``-r``/``--requirement`` and ``-c``/``--constraint`` includes, relative to the file
  that includes them, nested to any depth; a file that includes itself is an error;
- ``-e``/``--editable`` local directories and VCS URLs;
- option lines: ``-i``/``--index-url``, ``--extra-index-url``, ``--no-index``,
  ``-f``/``--find-links``, ``--trusted-host``, ``--pre``, ``--prefer-binary``,
  ``--only-binary``, ``--no-binary``, ``--require-hashes``, ``--use-feature``;
- per-requirement ``--hash``, ``--config-settings`` and ``--global-option``;
- PEP 508 requirements with extras and markers, direct URLs (``name @ https://...``),
  VCS URLs (``name @ git+https://...`` and the older ``git+https://...#egg=name``),
  local directories, wheels and source archives.

Where this reader differs from pip, it is on purpose:

- an index or find-links option written after a requirement on the same line
  (``torch==1.8.1+cpu -f https://...``) is recorded as an option line with its origin;
  pip drops it without a word (field case F06);
- ``git+git://`` URLs are refused: hosts no longer serve that protocol (F25);
- requirements files named by URL are refused, since detect must not use the network.

Local paths in requirements are relative to the app directory, as they are for pip and
uv run from there; ``-f`` paths are relative to the including file when the path
exists there, again as pip does.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Mapping, Optional, Tuple
from urllib.parse import unquote

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from .declared import (
    Declaration,
    DeclarationKind,
    DeclaredRequirement,
    DeclaredValue,
    IndexOptions,
    SourceKind,
)
from .errors import BuildpackError, Origin
from .tomlcompat import read_text, read_toml

# pip's patterns: a comment starts a line or follows whitespace; variables are ${NAME}.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NAME_AT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")
_EGG = re.compile(r"[#&]egg=([^&]+)")
_EXTRAS = re.compile(r"^(?P<path>.*?)(?P<extras>\[[^\]]*\])?$")
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVE_SUFFIXES = (
    ".whl",
    ".zip",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tar",
)

_SHORT_OPTIONS = {
    "-r": "--requirement",
    "-c": "--constraint",
    "-e": "--editable",
    "-i": "--index-url",
    "-f": "--find-links",
}
_FLAG_OPTIONS = frozenset(
    {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
)
_VALUE_OPTIONS = frozenset(
    {
        "--requirement",
        "--constraint",
        "--editable",
        "--index-url",
        "--extra-index-url",
        "--find-links",
        "--trusted-host",
        "--no-binary",
        "--only-binary",
        "--use-feature",
        "--hash",
        "--config-settings",
        "--global-option",
    }
)
_INCLUDE_OPTIONS = frozenset({"--requirement", "--constraint"})
_PER_REQUIREMENT_OPTIONS = frozenset({"--hash", "--config-settings", "--global-option"})
_PASS_THROUGH_OPTIONS = frozenset(
    {
        "--pre",
        "--prefer-binary",
        "--require-hashes",
        "--no-binary",
        "--only-binary",
        "--use-feature",
    }
)


def read_requirements(
    path: Path, app_dir: Path, env: Optional[Mapping[str, str]] = None
) -> Declaration:
    """Return the declaration made by requirements file ``path`` and its includes.

    ``env`` supplies ``${VAR}`` values (default: none, so they stay as written).
    Raises :class:`BuildpackError` naming file and line for a missing include, an
    include cycle, a line that is not a requirement or known option, or a
    ``git+git://`` URL.
    """
    reader = _Reader(app_dir, env or {})
    reader.read_file(path, as_constraints=False, included_from=None, chain=())
    return Declaration(
        kind=DeclarationKind.REQUIREMENTS_TXT,
        app_dir=app_dir,
        files=tuple(reader.files),
        requirements=tuple(reader.requirements),
        constraints=tuple(reader.constraints),
        index_options=reader.index_options(),
    )


def parse_requirement(
    text: str, origin: Origin, app_dir: Path, editable: bool = False
) -> DeclaredRequirement:
    """Return one requirement read from ``text`` (no options, no comment).

    ``text`` may be PEP 508, a URL (with ``#egg=name`` or a wheel file name telling
    the name) or a local path relative to ``app_dir``. Raises
    :class:`BuildpackError` at ``origin`` when it is none of these, when a local path
    does not exist, or for a ``git+git://`` URL.
    """
    stripped = text.strip()
    _refuse_git_protocol(stripped, origin, app_dir)
    if not _NAME_AT.match(stripped):
        left, marker = _split_marker(stripped)
        if _is_url(left):
            return _url_requirement(left, marker, origin, app_dir, editable)
        if _looks_like_path(left):
            return _path_requirement(left, marker, origin, app_dir, editable)

    try:
        requirement = Requirement(stripped)
    except InvalidRequirement as error:
        raise _invalid_line(origin, app_dir, stripped, str(error)) from None
    kind = _source_kind(requirement.url) if requirement.url else SourceKind.INDEX
    if kind is SourceKind.PATH and requirement.url:
        requirement.url = _absolute_file_url(requirement.url, app_dir)
        stripped = str(requirement)
    if editable and kind is SourceKind.INDEX:
        raise _invalid_line(
            origin,
            app_dir,
            f"-e {stripped}",
            "-e needs a local directory or a VCS URL, not a package from an index",
        )
    return DeclaredRequirement(
        text=stripped,
        origin=origin,
        requirement=requirement,
        name=canonicalize_name(requirement.name),
        source_kind=kind,
        editable=editable,
    )


# ----------------------------------------------------------------------- file reading


@dataclass(frozen=True)
class _Line:
    """A logical line: continuations joined, comment removed, variables expanded."""

    number: int  # the first physical line
    text: str


class _Reader:
    """Collects what a requirements file and everything it includes declare."""

    def __init__(self, app_dir: Path, env: Mapping[str, str]) -> None:
        self.app_dir = app_dir
        self.env = env
        self.files: List[Path] = []
        self.requirements: List[DeclaredRequirement] = []
        self.constraints: List[DeclaredRequirement] = []
        self.index_url: Optional[DeclaredValue] = None
        self.extra_index_urls: List[DeclaredValue] = []
        self.find_links: List[DeclaredValue] = []
        self.trusted_hosts: List[DeclaredValue] = []
        self.no_index: Optional[Origin] = None
        self.pass_through: List[DeclaredValue] = []

    def index_options(self) -> IndexOptions:
        return IndexOptions(
            index_url=self.index_url,
            extra_index_urls=tuple(self.extra_index_urls),
            find_links=tuple(self.find_links),
            trusted_hosts=tuple(self.trusted_hosts),
            no_index=self.no_index,
            pass_through_options=tuple(self.pass_through),
        )

    def read_file(
        self,
        path: Path,
        as_constraints: bool,
        included_from: Optional[Origin],
        chain: Tuple[Tuple[Path, Optional[Origin]], ...],
    ) -> None:
        real = Path(os.path.realpath(path))
        if any(seen == real for seen, _ in chain):
            raise self._cycle_error(path, included_from, chain)
        if not path.is_file():
            raise self._missing_file_error(path, included_from)
        if path not in self.files:
            self.files.append(path)

        chain = chain + ((real, included_from),)
        for line in _logical_lines(read_text(path), self.env):
            self._read_line(path, line, as_constraints, chain)

    def _read_line(
        self,
        path: Path,
        line: _Line,
        as_constraints: bool,
        chain: Tuple[Tuple[Path, Optional[Origin]], ...],
    ) -> None:
        origin = Origin(path, line.number)
        requirement_text, options_text = _split_requirement_and_options(line.text)
        options = _parse_options(options_text, origin, self.app_dir, line.text)
        per_requirement = [(n, v) for n, v in options if n in _PER_REQUIREMENT_OPTIONS]
        editables = [v for n, v in options if n == "--editable"]

        if requirement_text or editables:
            if requirement_text and (editables or _includes(options)):
                raise _invalid_line(
                    origin,
                    self.app_dir,
                    line.text,
                    "a requirement cannot share its line with -e, -r or -c",
                )
            if len(editables) > 1:
                raise _invalid_line(origin, self.app_dir, line.text, "one -e per line")
            editable = bool(editables)
            text = editables[0] if editable else requirement_text
            declared = _with_line_options(
                parse_requirement(text or "", origin, self.app_dir, editable),
                per_requirement,
            )
            self._add(declared, as_constraints, line)
        elif per_requirement:
            raise _invalid_line(
                origin,
                self.app_dir,
                line.text,
                f"{per_requirement[0][0]} must follow a requirement on the same line",
            )

        for name, value in options:
            if name in _INCLUDE_OPTIONS:
                # pip's rule: -c makes the included file constraints, and -r makes it
                # requirements, whatever the including file is.
                target = self._include_path(value or "", origin, line.text)
                self.read_file(target, name == "--constraint", origin, chain)
            elif name not in _PER_REQUIREMENT_OPTIONS and name != "--editable":
                self._record_option(name, value, origin, path)

    def _add(
        self, declared: DeclaredRequirement, as_constraint: bool, line: _Line
    ) -> None:
        if not as_constraint:
            self.requirements.append(declared)
            return
        # pip refuses these as constraints; saying so here names the line.
        if declared.editable or declared.name is None:
            what = "an editable requirement" if declared.editable else "a requirement "
            what += "" if declared.editable else "without a name"
            raise _invalid_line(
                declared.origin,
                self.app_dir,
                line.text,
                f"{what} cannot be a constraint; constraints name a package and "
                "limit its version",
            )
        self.constraints.append(declared)

    def _include_path(self, value: str, origin: Origin, line_text: str) -> Path:
        if _is_url(value):
            raise BuildpackError(
                "Requirements files from a URL are not supported",
                f"{_display(origin.path, self.app_dir)} includes {value}; the "
                "buildpack reads only files inside the app.",
                "Download that file into the app and include it by its path.",
                origin,
            )
        return Path(os.path.normpath(origin.path.parent / value))

    def _record_option(
        self, name: str, value: Optional[str], origin: Origin, path: Path
    ) -> None:
        if name == "--index-url":
            self.index_url = DeclaredValue(value or "", origin)
        elif name == "--extra-index-url":
            self.extra_index_urls.append(DeclaredValue(value or "", origin))
        elif name == "--find-links":
            self.find_links.append(
                DeclaredValue(self._find_links(value or "", path), origin)
            )
        elif name == "--trusted-host":
            self.trusted_hosts.append(DeclaredValue(value or "", origin))
        elif name == "--no-index":
            self.no_index = origin
        elif name in _PASS_THROUGH_OPTIONS:
            text = f"{name}={value}" if value is not None else name
            self.pass_through.append(DeclaredValue(text, origin))

    def _find_links(self, value: str, including_file: Path) -> str:
        if _is_url(value) or value.startswith("file:"):
            return value
        beside = including_file.parent / value
        if beside.exists():
            return os.path.normpath(beside)
        return os.path.normpath(self.app_dir / value)

    def _missing_file_error(
        self, path: Path, included_from: Optional[Origin]
    ) -> BuildpackError:
        shown = _display(path, self.app_dir)
        if included_from is None:
            return BuildpackError(
                "Requirements file not found",
                f"{shown} does not exist.",
                "Create it, or point BP_ML_REQUIREMENTS_FILE at the right file.",
                Origin(path),
            )
        written = os.path.relpath(path, included_from.path.parent)
        including = _display(included_from.path, self.app_dir)
        fix = (
            f"Create {shown}, or correct the path on line {included_from.line} of "
            f"{including}. Paths after -r and -c are relative to the file that "
            "contains them."
        )
        beside_app = Path(os.path.normpath(self.app_dir / written))
        if beside_app.is_file() and beside_app != path:
            better = os.path.relpath(beside_app, included_from.path.parent)
            fix += f" {_display(beside_app, self.app_dir)} exists: write {better}."
        return BuildpackError(
            "Included requirements file not found",
            f"{including} includes {written}, that is {shown}, which does not exist.",
            fix,
            included_from,
        )

    def _cycle_error(
        self,
        path: Path,
        included_from: Optional[Origin],
        chain: Tuple[Tuple[Path, Optional[Origin]], ...],
    ) -> BuildpackError:
        steps = [
            origin.describe(self.app_dir)
            for _, origin in chain[1:]
            if origin is not None
        ]
        if included_from is not None:
            steps.append(included_from.describe(self.app_dir))
        shown = _display(path, self.app_dir)
        return BuildpackError(
            "Requirements files include each other in a loop",
            f"{shown} is included again through {' -> '.join(steps)}.",
            "Remove one of these -r or -c lines so that no file includes itself.",
            included_from,
        )


def _includes(options: List[Tuple[str, Optional[str]]]) -> bool:
    return any(name in _INCLUDE_OPTIONS for name, _ in options)


def _with_line_options(
    declared: DeclaredRequirement, options: List[Tuple[str, Optional[str]]]
) -> DeclaredRequirement:
    if not options:
        return declared
    from dataclasses import replace

    hashes = tuple(v or "" for n, v in options if n == "--hash")
    others = tuple(f"{n}={v}" for n, v in options if n != "--hash")
    return replace(declared, hashes=hashes, options=others)


def _logical_lines(text: str, env: Mapping[str, str]) -> Iterator[_Line]:
    """Yield the lines pip would read, numbered by their first physical line."""
    pending: List[str] = []
    first = 0
    for number, physical in enumerate(text.splitlines(), start=1):
        # A line that ends in a backslash continues, unless it is a comment.
        if physical.endswith("\\") and not _COMMENT.match(physical):
            if not pending:
                first = number
            pending.append(physical[:-1])
            continue
        if pending:
            pending.append(physical)
            joined, start = "".join(pending), first
            pending = []
        else:
            joined, start = physical, number
        line = _clean(joined, env)
        if line:
            yield _Line(start, line)
    if pending:
        line = _clean("".join(pending), env)
        if line:
            yield _Line(first, line)


def _clean(line: str, env: Mapping[str, str]) -> str:
    line = _COMMENT.sub("", line).strip()
    return _ENV_VAR.sub(lambda found: env.get(found.group(1), found.group(0)), line)


def _split_requirement_and_options(line: str) -> Tuple[str, str]:
    """Split as pip does: the requirement ends at the first word starting with ``-``."""
    words = line.split(" ")
    for index, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:index]).strip(), " ".join(words[index:])
    return line.strip(), ""


def _parse_options(
    text: str, origin: Origin, app_dir: Path, line: str
) -> List[Tuple[str, Optional[str]]]:
    """Return ``(long name, value)`` pairs; flags have the value None."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise _invalid_line(origin, app_dir, line, str(error)) from None
    found: List[Tuple[str, Optional[str]]] = []
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        value: Optional[str] = None
        if word.startswith("--"):
            written, has_value, attached = word.partition("=")
            name = _long_option(written, origin, app_dir, line)
            if has_value:
                value = attached
        elif word.startswith("-") and word[:2] in _SHORT_OPTIONS:
            name = _SHORT_OPTIONS[word[:2]]
            value = word[2:] or None
        else:
            raise _invalid_line(origin, app_dir, line, f"unexpected {word!r}")

        if name in _FLAG_OPTIONS:
            if value is not None:
                raise _invalid_line(origin, app_dir, line, f"{name} takes no value")
        elif value is None:
            if position >= len(words):
                raise _invalid_line(origin, app_dir, line, f"{name} needs a value")
            value = words[position]
            position += 1
        found.append((name, value))
    return found


def _long_option(written: str, origin: Origin, app_dir: Path, line: str) -> str:
    known = _FLAG_OPTIONS | _VALUE_OPTIONS
    if written in known:
        return written
    # pip (through optparse) also accepts any unambiguous prefix of a long option.
    matches = sorted(name for name in known if name.startswith(written))
    if len(matches) == 1:
        return matches[0]
    reason = f"{written} is not an option pip accepts in a requirements file"
    raise _invalid_line(origin, app_dir, line, reason)


# ------------------------------------------------------------------ requirement forms


def _split_marker(text: str) -> Tuple[str, Optional[str]]:
    # As in pip: after a URL only "; " starts the marker, since URLs may contain ";".
    separator = "; " if _is_url(text) else ";"
    if separator in text:
        left, marker = text.split(separator, 1)
        return left.strip(), marker.strip() or None
    return text, None


def _is_url(text: str) -> bool:
    return bool(_URL.match(text)) or text.startswith("file:")


def _looks_like_path(text: str) -> bool:
    path, _ = _split_extras(text)
    return (
        "/" in path
        or "\\" in path
        or path.startswith(".")
        or path.lower().endswith(_ARCHIVE_SUFFIXES)
    )


def _split_extras(text: str) -> Tuple[str, str]:
    found = _EXTRAS.match(text)
    assert found is not None  # the pattern matches every string
    return found.group("path"), found.group("extras") or ""


def _source_kind(url: str) -> SourceKind:
    if url.lower().startswith(_VCS_PREFIXES):
        return SourceKind.VCS
    if url.startswith("file:"):
        return SourceKind.PATH
    return SourceKind.URL


def _absolute_file_url(url: str, app_dir: Path) -> str:
    """Return ``url`` with a relative ``file:`` path made absolute from ``app_dir``."""
    rest = url[len("file:") :]
    if rest.startswith("//"):
        return url
    return (app_dir / rest).resolve().as_uri() if rest else app_dir.as_uri()


def _url_requirement(
    url: str, marker: Optional[str], origin: Origin, app_dir: Path, editable: bool
) -> DeclaredRequirement:
    kind = _source_kind(url)
    if kind is SourceKind.PATH:
        url = _absolute_file_url(url, app_dir)
    if editable and kind is SourceKind.URL:
        raise _invalid_line(
            origin,
            app_dir,
            f"-e {url}",
            "-e needs a local directory or a VCS URL, not an archive URL",
        )
    name = _name_from_url(url)
    suffix = f" ; {marker}" if marker else ""
    if name is None:
        return DeclaredRequirement(
            text=f"{url}{suffix}", origin=origin, source_kind=kind, editable=editable
        )

    pep508 = f"{name} @ {url}{suffix}"
    try:
        requirement: Optional[Requirement] = Requirement(pep508)
    except InvalidRequirement:
        requirement = None
    # pip reads an editable VCS checkout only in its URL form, so that stays.
    text = f"{url}{suffix}" if editable or requirement is None else pep508
    return DeclaredRequirement(
        text=text,
        origin=origin,
        requirement=requirement,
        name=canonicalize_name(name),
        source_kind=kind,
        editable=editable,
    )


def _name_from_url(url: str) -> Optional[str]:
    egg = _EGG.search(url)
    if egg:
        return _split_extras(egg.group(1))[0] or None
    filename = url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return _name_from_filename(unquote(filename))


def _name_from_filename(filename: str) -> Optional[str]:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _path_requirement(
    text: str, marker: Optional[str], origin: Origin, app_dir: Path, editable: bool
) -> DeclaredRequirement:
    written, extras = _split_extras(text)
    absolute = Path(os.path.normpath(app_dir / written))
    if not absolute.exists():
        beside = Path(os.path.normpath(origin.path.parent / written))
        fix = "Correct the path; it is relative to the app directory, as pip reads it."
        if beside.exists():
            fix += (
                f" {_display(beside, app_dir)} exists: write "
                f"{os.path.relpath(beside, app_dir)} instead."
            )
        raise BuildpackError(
            "Local package not found",
            f"The line installs {written}, but {_display(absolute, app_dir)} does not "
            "exist.",
            fix,
            origin,
        )
    if editable and not absolute.is_dir():
        raise _invalid_line(
            origin, app_dir, f"-e {text}", "-e needs a directory, not a file"
        )
    name = _local_project_name(absolute)
    suffix = f" ; {marker}" if marker else ""
    return DeclaredRequirement(
        text=f"{absolute}{extras}{suffix}",
        origin=origin,
        name=canonicalize_name(name) if name else None,
        source_kind=SourceKind.PATH,
        editable=editable,
    )


def _local_project_name(path: Path) -> Optional[str]:
    """Return the project name a local path declares statically, or None."""
    if path.is_file():
        return _name_from_filename(path.name)
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        name = read_toml(pyproject).get("project", {}).get("name")
    except (BuildpackError, AttributeError):
        return None
    return name if isinstance(name, str) else None


# --------------------------------------------------------------------------- errors


def _refuse_git_protocol(text: str, origin: Origin, app_dir: Path) -> None:
    if "git+git://" not in text.lower():
        return
    start = text.lower().index("git+git://")
    suggestion = text[:start] + "git+https://" + text[start + len("git+git://") :]
    raise BuildpackError(
        "The git:// protocol is not supported",
        f"`{text}` uses git+git://. GitHub and most other hosts no "
        "longer serve the unauthenticated git:// protocol, so the clone would hang or "
        "fail.",
        f"Use git+https:// instead: `{suggestion}`.",
        origin,
    )


def _invalid_line(
    origin: Origin, app_dir: Path, line: str, reason: str
) -> BuildpackError:
    shown = _display(origin.path, app_dir)
    if origin.path.suffix == ".toml":  # one dependency string of a pyproject.toml
        title = f"Cannot read a dependency of {shown}"
        fix = (
            'Write each dependency as a PEP 508 string, e.g. "torch>=2.3", '
            '"numpy==2.3.0" or "name @ https://...".'
        )
    else:
        title = f"Cannot read a line of {shown}"
        fix = (
            "Write one requirement per line (such as `name==1.2`, `name @ https://...` "
            "or ./local/path) or an option pip accepts in requirements files (-r, -c, "
            "-e, --index-url, --find-links, ...)."
        )
    return BuildpackError(
        title,
        # packaging's reasons end in a line that points at the fault: add no stop.
        f"`{line}`: {reason}" + ("" if "\n" in reason else "."),
        fix,
        origin,
    )


def _display(path: Path, app_dir: Path) -> str:
    try:
        return str(path.relative_to(app_dir))
    except ValueError:
        return str(path)
