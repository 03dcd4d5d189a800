"""Turn what the app declares into the full pinned set for this interpreter.

Requirements files and pyproject dependencies are resolved with ``uv pip compile``
for the build's own interpreter, so markers are evaluated for the target. A lock
file's pins are taken as they are.

With the CPU variant (the default) the torch family is routed to the CPU index: uv
takes a small generated project, beside the app's own inputs, that names each
torch-family package with an explicit index source. uv applies sources only to direct
dependencies, so a torch reached through another package (sentence-transformers, say)
is found by a first pass and routed in a second one (field case F02).
"""

from __future__ import annotations

import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

import tomli_w
from packaging.markers import InvalidMarker, Marker, default_environment
from packaging.utils import canonicalize_name

from . import classify
from .config import Config
from .declared import SourceKind
from .errors import BuildpackError, Origin
from .indexes import AppIndexes
from .output import Log
from .tomlcompat import tomllib
from .uvtool import Uv

OPT_OUT = (
    "Set BP_ML_TORCH_VARIANT=as-declared to install torch exactly as the files "
    "say, or cuda to keep CUDA builds."
)


@dataclass(frozen=True)
class Pin:
    """One distribution of the resolved set."""

    name: str
    version: str
    requirement: str
    index: Optional[str] = None
    via: Tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.name} {self.version}".strip()


@dataclass
class Resolution:
    pins: List[Pin]
    torch_index: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    def by_name(self) -> Dict[str, Pin]:
        return {pin.name: pin for pin in self.pins}


@dataclass(frozen=True)
class TorchRoute:
    """Where torch-family packages come from, or None to leave them to the app."""

    index_url: Optional[str]


def torch_route(config: Config) -> TorchRoute:
    """The CPU index for cpu; for cuda, a user-set index, else PyPI's own builds."""
    if config.torch_variant == "cpu":
        return TorchRoute(config.torch_index_url)
    if config.torch_variant == "cuda" and config.torch_index_url_set:
        return TorchRoute(config.torch_index_url)
    return TorchRoute(None)


# --------------------------------------------------------------------------- resolve


def resolve(
    declaration,
    config: Config,
    indexes: AppIndexes,
    python: str,
    uv: Uv,
    workdir: Path,
    log: Log,
) -> Resolution:
    """Resolve ``declaration`` (not a lock file) into pins; raise BuildpackError."""
    route = torch_route(config)
    requirements = list(declaration.requirements)
    inputs = _write_inputs(workdir, requirements, declaration.constraints)

    routed: Dict[str, str] = {}
    declared_specs: Dict[str, str] = {}
    if route.index_url:
        for declared in requirements:
            if declared.name in classify.TORCH_FAMILY:
                where = declared.origin.describe(declaration.app_dir)
                declared_specs[declared.name] = f"{declared.text} ({where})"
                marker = declared.requirement.marker if declared.requirement else None
                routed[declared.name] = (
                    f"{declared.name} ; {marker}" if marker else declared.name
                )

    first = _compile(
        uv, workdir, inputs, routed, route, indexes, python, declaration, log
    )
    if not route.index_url:
        return Resolution(first, torch_index=None)

    transitive = sorted(
        pin.name
        for pin in first
        if pin.name in classify.TORCH_FAMILY and pin.name not in routed
    )
    if not transitive:
        resolution = Resolution(first, torch_index=route.index_url)
        _note_torch(resolution, {}, declared_specs, log)
        return resolution

    unrouted = {pin.name: pin for pin in first}
    for name in transitive:
        through = (
            ", ".join(v for v in unrouted[name].via if not v.startswith("-")) or "?"
        )
        log.detail(
            f"{name} is reached through {through}; routing it to the CPU index too"
        )
        routed[name] = name
    second = _compile(
        uv, workdir, inputs, routed, route, indexes, python, declaration, log
    )
    resolution = Resolution(second, torch_index=route.index_url)
    replaced = {name: unrouted[name] for name in transitive}
    cuda_count = sum(1 for name in unrouted if classify.is_cuda_package(name))
    _note_torch(resolution, replaced, declared_specs, log, cuda_count)
    return resolution


def _note_torch(
    resolution: Resolution,
    replaced: Mapping[str, Pin],
    declared: Mapping[str, str],
    log: Log,
    cuda_count: int = 0,
) -> None:
    """Log each torch-family substitution, the opt-out, and any CUDA package left.

    Each line says what the app's files asked for (or what PyPI would have given)
    and what is installed instead, as in ``torch==2.3.1 -> 2.3.1+cpu`` (F27).
    """
    changed = False
    for pin in resolution.pins:
        if pin.name not in classify.TORCH_FAMILY:
            continue
        before = replaced.get(pin.name)
        if before is not None:
            line = (
                f"{pin.name} {before.version} from the app's index (a build pulling "
                f"{cuda_count} CUDA packages) -> {pin.version} from the CPU index"
            )
        elif pin.name in declared:
            line = f"{declared[pin.name]} -> {pin.version} from the CPU index"
        else:
            line = f"{pin.name} {pin.version} from the CPU index"
        changed = True
        resolution.notes.append(line)
        log.detail(line)
    if changed:
        log.detail(OPT_OUT)
    for pin in resolution.pins:
        if classify.is_cuda_package(pin.name):
            _warn_cuda_kept(pin.describe(), list(pin.via), log)


def _warn_cuda_kept(package: str, users: Sequence[str], log: Log) -> None:
    who = ", ".join(users) or "an unknown package"
    log.warning(
        "CUDA package kept",
        f"{package} is required by {who}, not by torch, so it stays.\n"
        "It only works on a GPU machine; drop that requirement for a CPU image.",
    )


def _write_inputs(
    workdir: Path, requirements: Sequence, constraints: Sequence
) -> List[str]:
    """Write the flattened requirements (and constraints); return uv's input args."""
    workdir.mkdir(parents=True, exist_ok=True)
    req_file = workdir / "requirements.in"
    # uv installs local directories editable but not VCS sources; in an image an
    # editable clone would gain nothing, so those are installed as built packages.
    req_file.write_text(
        "".join(
            f"{'-e ' if r.editable and r.source_kind is not SourceKind.VCS else ''}"
            f"{r.text}\n"
            for r in requirements
        )
    )
    args = [str(req_file)]
    if constraints:
        con_file = workdir / "constraints.txt"
        con_file.write_text("".join(f"{c.text}\n" for c in constraints))
        args += ["--constraints", str(con_file)]
    return args


def explicit_sources(declaration) -> Dict[str, Tuple[str, str]]:
    """Packages the app ties to one index: name -> (requirement, index URL)."""
    sources: Dict[str, Tuple[str, str]] = {}
    for declared in declaration.requirements:
        if declared.index_url and declared.name not in classify.TORCH_FAMILY:
            marker = declared.marker
            text = f"{declared.name} ; {marker}" if marker else str(declared.name)
            sources[str(declared.name)] = (text, declared.index_url)
    return sources


def _write_routing_project(
    workdir: Path,
    routed: Mapping[str, str],
    index_url: Optional[str],
    sources: Optional[Mapping[str, Tuple[str, str]]] = None,
) -> Path:
    """Write the generated project that ties packages to their index.

    Torch-family names go to the torch index; packages the app ties to an index
    of its own (``sources``) go to that one. Each index is explicit, so it serves
    only the packages named for it.
    """
    project_dir = workdir / "torch-routing"
    project_dir.mkdir(parents=True, exist_ok=True)
    dependencies = [routed[name] for name in sorted(routed)] if index_url else []
    index_table = (
        [{"name": "torch", "url": index_url, "explicit": True}] if index_url else []
    )
    source_table = (
        {name: {"index": "torch"} for name in sorted(routed)} if index_url else {}
    )
    urls: Dict[str, str] = {}
    for name, (text, url) in sorted((sources or {}).items()):
        if url not in urls:
            urls[url] = f"app-source-{len(urls) + 1}"
            index_table.append({"name": urls[url], "url": url, "explicit": True})
        dependencies.append(text)
        source_table[name] = {"index": urls[url]}
    document = {
        "project": {
            "name": "torch-routing",
            "version": "0",
            "dependencies": dependencies,
        },
        "tool": {"uv": {"index": index_table, "sources": source_table}},
    }
    path = project_dir / "pyproject.toml"
    path.write_text(tomli_w.dumps(document))
    return path


def _compile(
    uv: Uv,
    workdir: Path,
    inputs: List[str],
    routed: Mapping[str, str],
    route: TorchRoute,
    indexes: AppIndexes,
    python: str,
    declaration,
    log: Log,
    output_format: str = "requirements.txt",
) -> List[Pin]:
    args = ["pip", "compile", inputs[0]]
    sources = explicit_sources(declaration)
    if (routed and route.index_url) or sources:
        args.append(
            str(_write_routing_project(workdir, routed, route.index_url, sources))
        )
    args += inputs[1:]
    args += [
        "--python",
        python,
        "--no-config",
        "--no-header",
        "--emit-index-annotation",
        "--annotation-style",
        "split",
        "--format",
        output_format,
        "--quiet",
    ]
    for name in sorted(classify.NEVER_BUILD_FROM_SOURCE):
        args += ["--only-binary", name]
    args += indexes.uv_args()
    done = uv.run(args, cwd=workdir, log=log)
    if done.returncode != 0:
        failed_torch = _failed_torch_name(done.stderr, routed)
        if failed_torch and route.index_url:
            available = _torch_range(
                uv, workdir, failed_torch, route.index_url, python, log
            )
            raise torch_pin_error(
                done.stderr, declaration, failed_torch, route.index_url, available
            )
        raise resolution_error(done.stderr, declaration, python)
    if output_format != "requirements.txt":
        (workdir / "resolution.out").write_text(done.stdout)
        return []
    return parse_compiled(done.stdout)


def wheel_sizes(
    uv: Uv, workdir: Path, python: str, indexes: AppIndexes, log: Log
) -> Dict[str, int]:
    """Sizes of the wheels the resolution will install, from a pylock.toml export.

    Uses the inputs and routing project the last ``resolve`` wrote into ``workdir``;
    uv answers from its cache. Packages without a known size are left out.
    """
    args = ["pip", "compile", str(workdir / "requirements.in")]
    routing = workdir / "torch-routing" / "pyproject.toml"
    if routing.is_file():
        args.append(str(routing))
    if (workdir / "constraints.txt").is_file():
        args += ["--constraints", str(workdir / "constraints.txt")]
    args += [
        "--python",
        python,
        "--no-config",
        "--format",
        "pylock.toml",
        "--quiet",
        "-o",
        str(workdir / "pylock.toml"),
    ]
    args += indexes.uv_args()
    done = uv.run(args, cwd=workdir, log=log)
    if done.returncode != 0:
        log.debug("size lookup failed: " + done.stderr.strip())
        return {}
    data = tomllib.loads((workdir / "pylock.toml").read_text())
    sizes: Dict[str, int] = {}
    unknown: Dict[str, str] = {}
    for package in data.get("packages", []):
        name = canonicalize_name(package["name"])
        files = package.get("wheels") or (
            [package["sdist"]] if "sdist" in package else []
        )
        known = [f.get("size") for f in files if isinstance(f.get("size"), int)]
        if known:
            sizes[name] = max(known)
        elif files and str(files[0].get("url", "")).startswith(("http://", "https://")):
            unknown[name] = files[0]["url"]
    # Plain HTML (PEP 503) indexes, such as most private mirrors, give no sizes:
    # ask the server for each file's length instead.
    with ThreadPoolExecutor(max_workers=8) as pool:
        lengths = pool.map(_content_length, unknown.values())
        for unsized, size in zip(unknown, lengths):
            if size is not None:
                sizes[unsized] = size
    return sizes


def _content_length(url: str) -> Optional[int]:
    """The size a server states for ``url``, or None when it does not say."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            length = response.headers.get("Content-Length")
    except (OSError, ValueError):
        return None
    return int(length) if length and length.isdigit() else None


_PIN_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(?P<version>\S+)"
)
_DIRECT_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*@\s*(?P<url>\S+)"
)


def parse_compiled(text: str) -> List[Pin]:
    """Parse ``uv pip compile`` output (split annotations, index annotations)."""
    pins: List[Pin] = []
    current: Optional[dict] = None

    def flush() -> None:
        if current is not None:
            pins.append(
                Pin(
                    current["name"],
                    current["version"],
                    current["requirement"],
                    current["index"],
                    tuple(current["via"]),
                )
            )

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        if not line.startswith(" ") and not line.startswith("#"):
            flush()
            requirement = line.split(" \\")[0].strip()
            if requirement.startswith("-e "):
                requirement = requirement[3:].strip()
            pinned = _PIN_LINE.match(requirement)
            direct = _DIRECT_LINE.match(requirement)
            if pinned:
                name, version = pinned.group("name"), pinned.group("version")
            elif direct:
                name, version = direct.group("name"), ""
            else:
                name, version = requirement, ""
            current = {
                "name": canonicalize_name(name),
                "version": version,
                "requirement": requirement,
                "index": None,
                "via": [],
            }
            continue
        comment = line.strip().lstrip("#").strip()
        if current is None or not comment:
            continue
        if comment.startswith("from "):
            current["index"] = comment[len("from ") :].strip()
        elif comment.startswith("via "):
            current["via"].append(comment[len("via ") :].strip())
        elif comment != "via":
            current["via"].append(comment)
    flush()
    return pins


# ------------------------------------------------------------------------ lock files


def from_lock(
    declaration, config: Config, python_env: Mapping[str, str], log: Log
) -> Resolution:
    """Take a lock file's pins as they are, but for the torch variant's substitution.

    With the CPU variant a locked ``torch==X`` becomes ``torch==X+cpu`` from the CPU
    index, and CUDA packages that only the torch family needs are dropped; each change
    is logged. Lock files without a dependency graph (Pipfile.lock) drop every CUDA
    package when torch is locked.
    """
    route = torch_route(config)
    locked = [
        p for p in declaration.locked_packages if _marker_holds(p.marker, python_env)
    ]
    names = {canonicalize_name(p.name) for p in locked}
    has_torch = bool(names & classify.TORCH_FAMILY)
    dependents: Dict[str, Set[str]] = {}
    graph_known = all(p.depends_on is not None for p in locked)
    for package in locked:
        for dep in package.depends_on or ():
            if _marker_holds(dep.marker, python_env):
                dependents.setdefault(canonicalize_name(dep.name), set()).add(
                    canonicalize_name(package.name)
                )
    substitute = bool(route.index_url) and has_torch
    cuda_names = {n for n in names if classify.is_cuda_package(n)}
    pins: List[Pin] = []
    notes: List[str] = []
    for package in locked:
        name = canonicalize_name(package.name)
        version = package.version or ""
        if substitute and name in cuda_names:
            users = dependents.get(name, set())
            if not graph_known or users <= (classify.TORCH_FAMILY | cuda_names):
                notes.append(f"dropped {name} {version}: only the CUDA torch needs it")
                continue
            _warn_cuda_kept(f"{name} {version}", sorted(users), log)
        requirement = package.requirement_text()
        index = None
        if substitute and name in classify.TORCH_FAMILY:
            index = route.index_url
            if version and "+" not in version:
                notes.append(f"{name} {version} -> {version}+cpu from the CPU index")
                version = f"{version}+cpu"
                requirement = f"{name}=={version}"
        pins.append(
            Pin(
                name,
                version,
                requirement,
                index,
                tuple(sorted(dependents.get(name, ()))),
            )
        )
    for note in notes:
        log.detail(note)
    if notes:
        log.detail(OPT_OUT)
    return Resolution(
        pins, torch_index=route.index_url if substitute else None, notes=notes
    )


def _marker_holds(marker, python_env: Mapping[str, str]) -> bool:
    if not marker:
        return True
    try:
        parsed = marker if isinstance(marker, Marker) else Marker(str(marker))
    except InvalidMarker:
        return True
    return parsed.evaluate(dict(python_env))


def marker_environment() -> Dict[str, str]:
    """The marker environment of the interpreter running the build (the target's)."""
    return {key: str(value) for key, value in default_environment().items()}


# -------------------------------------------------------------------------- errors


_NO_WHEEL = re.compile(
    r"Because (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<spec>[<>=!~][^ ]*)? has no "
    r"(usable wheels|wheels with a matching)"
)
_DEPENDS_ON = re.compile(
    r"(?P<parent>[A-Za-z0-9][A-Za-z0-9._-]*==[^ ,]+) depends on "
    r"(?P<name>[A-Za-z0-9._-]+)"
)


def _clean_uv_message(stderr: str) -> str:
    """uv's message in the app's terms: no generated project, no hints about flags
    the user never set (credentials are cut out when the error is shown)."""
    lines = []
    for line in stderr.strip().splitlines():
        if line.startswith("hint:") and "--no-build-package" in line:
            continue
        lines.append(line.replace("torch-routing depends on", "the app requires"))
    return "\n".join(lines).strip()


def resolution_error(stderr: str, declaration, python: str) -> BuildpackError:
    """Explain a failed resolution, pointing at the declaring line where we can."""
    message = _clean_uv_message(stderr)
    mentioned = _declared_names_in(message, declaration)
    origin: Optional[Origin] = mentioned[0].origin if mentioned else None
    version = _python_version(python)
    no_wheel = _NO_WHEEL.search(message)
    if no_wheel or "building from source is disabled" in message:
        name = no_wheel.group("name") if no_wheel else "a package"
        spec = (no_wheel.group("spec") or "") if no_wheel else ""
        parents = sorted(
            {
                m.group("parent")
                for m in _DEPENDS_ON.finditer(message)
                if canonicalize_name(m.group("name")) == canonicalize_name(name)
            }
        )
        required_by = f" (required by {', '.join(parents)})" if parents else ""
        return BuildpackError(
            "No installable wheel for this Python",
            f"{name}{spec}{required_by} has no wheel for Python {version} on "
            f"{_arch()}. Building it from source would need a compiler toolchain "
            f"(Rust or C++) and take many minutes, so the build stops here instead."
            f"\n\n{message}",
            f"Upgrade the package that pins {name} to a release with wheels for "
            f"Python {version}, or pin the app's Python (.python-version) to one "
            f"that {name}{spec} has wheels for, with a builder that provides it.",
            origin=origin,
        )
    unreachable = re.search(
        r"(Connection refused|error sending request|Failed to fetch|dns error|"
        r"timed out|certificate)",
        message,
        re.IGNORECASE,
    )
    if unreachable:
        urls = sorted(set(re.findall(r"https?://[^\s`'\"]+", message)))
        where = ", ".join(urls[:3]) or "a package index"
        return BuildpackError(
            "Could not reach a package index",
            f"uv could not fetch from {where} ({unreachable.group(1)}):\n\n{message}",
            "Check the index URLs (BP_ML_TORCH_INDEX_URL for torch, PIP_INDEX_URL or "
            "the requirements' --index-url for the rest), that the build can reach "
            "them, and, behind a TLS proxy, pass its CA with pack build --env "
            "SSL_CERT_FILE=...",
            origin=origin,
        )
    return BuildpackError(
        "Could not resolve the app's dependencies",
        "uv could not find a set of versions that satisfies every requirement:"
        f"\n\n{message}",
        "Relax or correct the requirement named above; pins of torch, torchvision "
        "and torchaudio must exist on the CPU index (set "
        "BP_ML_TORCH_VARIANT=as-declared to install exactly what the files say).",
        origin=origin,
    )


def _failed_torch_name(stderr: str, routed: Mapping[str, str]) -> Optional[str]:
    """The routed torch-family name uv could not find a version of, if any."""
    for name in sorted(routed):
        if re.search(rf"no version of {re.escape(name)}\b", stderr) or re.search(
            rf"{re.escape(name)}\S* has no (usable wheels|wheels with a matching)",
            stderr,
        ):
            return name
    return None


def _torch_range(
    uv: Uv, workdir: Path, name: str, index_url: str, python: str, log: Log
) -> Tuple[Optional[str], Optional[str]]:
    """The oldest and newest ``name`` the torch index has for this interpreter."""
    probe_dir = workdir / "probe"
    project = _write_routing_project(probe_dir, {name: name}, index_url)
    found = []
    for strategy in ("lowest", "highest"):
        done = uv.run(
            [
                "pip",
                "compile",
                str(project),
                "--python",
                python,
                "--no-config",
                "--no-header",
                "--no-annotate",
                "--quiet",
                "--no-deps",
                "--resolution",
                strategy,
            ],
            cwd=probe_dir,
            log=log,
        )
        pins = [p for p in parse_compiled(done.stdout) if p.name == name]
        found.append(pins[0].version if done.returncode == 0 and pins else None)
    return found[0], found[1]


def torch_pin_error(
    stderr: str,
    declaration,
    name: str,
    index_url: str,
    available: Tuple[Optional[str], Optional[str]],
) -> BuildpackError:
    """A torch-family pin the CPU index has no wheel of, for this Python (F06)."""
    declared = [r for r in declaration.requirements if r.name == name]
    asked = declared[0].text if declared else name
    origin = declared[0].origin if declared else None
    version = _python_version("")
    oldest, newest = available
    if oldest:
        have = (
            f"The oldest {name} it has for Python {version} is {oldest}"
            f"{f' and the newest {newest}' if newest and newest != oldest else ''}."
        )
        fix = (
            f"Pin {name}>={oldest.split('+')[0]} (with matching torchvision and "
            f"torchaudio), or run the app on a Python that {asked} supports."
        )
    else:
        have = f"It has no {name} at all for Python {version} on {_arch()}."
        fix = "Check BP_ML_TORCH_INDEX_URL, or run the app on a supported Python."
    return BuildpackError(
        f"No CPU build of {asked} for Python {version}",
        f"The app asks for {asked}, but the CPU index {index_url} has no "
        f"wheel of it for CPython {version} on {_arch()}. {have}\n\n"
        f"{_clean_uv_message(stderr)}",
        f"{fix} BP_ML_TORCH_VARIANT=as-declared installs exactly what the files "
        "say instead, from the app's own indexes.",
        origin=origin,
    )


def _declared_names_in(message: str, declaration) -> List:
    found = []
    lowered = message.lower()
    for declared in list(declaration.requirements) + list(declaration.constraints):
        if declared.name and re.search(rf"\b{re.escape(declared.name)}\b", lowered):
            found.append(declared)
    return found


def _python_version(python: str) -> str:
    import sys

    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _arch() -> str:
    import platform

    return platform.machine()
