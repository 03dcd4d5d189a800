"""The start command: Procfile processes, else a web process found in the app.

Order of precedence: ``BP_ML_START_COMMAND``; a ``Procfile``; a web framework found in
the app's code and installed (FastAPI or Starlette through uvicorn, Flask or Django
through gunicorn); ``python main.py`` or ``python app.py``. Web processes bind
``0.0.0.0:$PORT`` (``PORT`` defaults to 8080) and give a model time to load: gunicorn's
worker timeout is raised from its 30 s default (field case F21), and uvicorn loads the
app before it listens, so it has no such timeout.

gunicorn takes its settings from, in rising priority, ``WEB_CONCURRENCY`` (workers),
the app's ``gunicorn.conf.py``, ``GUNICORN_CMD_ARGS`` and its command line. So the
raised timeout goes in front of the user's ``GUNICORN_CMD_ARGS``, where a later
``--timeout`` of theirs wins, and not on the command line, where nothing could change
it; an app with its own ``gunicorn.conf.py`` gets no default at all. Only the bind
address, which the platform decides through ``$PORT``, is a command-line flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set

from .errors import BuildpackError, Origin
from .tomlcompat import read_text

GUNICORN_TIMEOUT = 300


@dataclass(frozen=True)
class Process:
    type: str
    command: str
    default: bool = False
    source: str = ""

    def to_launch(self) -> Dict[str, object]:
        """The ``[[processes]]`` entry; a shell runs the line so $PORT expands."""
        return {
            "type": self.type,
            "command": ["bash", "-c", self.command],
            "default": self.default,
        }


_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_.-]+):\s*(.+)$")


def read_procfile(path: Path) -> List[Process]:
    """Parse a Procfile; raise BuildpackError naming the bad line."""
    processes: List[Process] = []
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if not match:
            raise BuildpackError(
                "Unreadable Procfile line",
                f"Expected 'type: command' but found {raw!r}.",
                "Write each process as 'web: gunicorn app:app' on its own line.",
                origin=Origin(path, number),
            )
        processes.append(
            Process(match.group(1), match.group(2).strip(), source="Procfile")
        )
    if not processes:
        return []
    types = [p.type for p in processes]
    default_type = "web" if "web" in types else types[0]
    return [
        Process(p.type, p.command, p.type == default_type, p.source) for p in processes
    ]


_FASTAPI = re.compile(
    r"^\s*(\w+)\s*(?::[^=]*)?=\s*(?:fastapi\.)?(FastAPI|Starlette)\s*\(", re.M
)
_FLASK = re.compile(r"^\s*(\w+)\s*(?::[^=]*)?=\s*(?:flask\.)?Flask\s*\(", re.M)
_CANDIDATES = (
    "main.py",
    "app.py",
    "server.py",
    "api.py",
    "wsgi.py",
    "asgi.py",
    "app/main.py",
    "src/main.py",
)


def _module_name(app_dir: Path, path: Path) -> str:
    return ".".join(path.relative_to(app_dir).with_suffix("").parts)


def detect_web_process(app_dir: Path, installed: Set[str]) -> Optional[Process]:
    """Find an ASGI or WSGI app object in the usual files; None if there is none."""
    for candidate in _CANDIDATES:
        path = app_dir / candidate
        if not path.is_file():
            continue
        source = path.read_text(errors="replace")
        module = _module_name(app_dir, path)
        asgi = _FASTAPI.search(source)
        if asgi and "uvicorn" in installed:
            return Process(
                "web",
                f"exec uvicorn {module}:{asgi.group(1)} --host 0.0.0.0"
                " --port ${PORT:-8080} --workers ${WEB_CONCURRENCY:-1}",
                default=True,
                source=f"{asgi.group(2)} app in {candidate}",
            )
        wsgi = _FLASK.search(source)
        if wsgi and "gunicorn" in installed:
            return Process(
                "web",
                _gunicorn(app_dir, f"{module}:{wsgi.group(1)}"),
                default=True,
                source=f"Flask app in {candidate}",
            )
    if "gunicorn" in installed and "django" in installed:
        for settings in sorted(app_dir.glob("*/wsgi.py")):
            module = f"{settings.parent.name}.wsgi:application"
            return Process(
                "web",
                _gunicorn(app_dir, module),
                default=True,
                source=f"Django project {settings.parent.name}",
            )
    return None


def _gunicorn(app_dir: Path, target: str) -> str:
    """The gunicorn command line; see the module docstring for where settings go."""
    command = f"exec gunicorn {target} --bind 0.0.0.0:${{PORT:-8080}}"
    if (app_dir / "gunicorn.conf.py").is_file():
        return command
    defaults = f"--timeout {GUNICORN_TIMEOUT}"
    return f'GUNICORN_CMD_ARGS="{defaults} ${{GUNICORN_CMD_ARGS:-}}" {command}'


def plan_processes(
    app_dir: Path, installed: Set[str], start_command: Optional[str]
) -> List[Process]:
    """Return the processes to write into launch.toml (possibly none)."""
    if start_command:
        return [
            Process("web", start_command, default=True, source="BP_ML_START_COMMAND")
        ]
    procfile = app_dir / "Procfile"
    if procfile.is_file():
        processes = read_procfile(procfile)
        if processes:
            return processes
    web = detect_web_process(app_dir, installed)
    if web:
        return [web]
    for script in ("main.py", "app.py"):
        if (app_dir / script).is_file():
            return [
                Process("web", f"exec python {script}", default=True, source=script)
            ]
    return []
