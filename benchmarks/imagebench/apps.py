"""A working copy of a sample app and the changes the benchmark makes to it.

Every contender builds the same copy at the same state: the sample as it is (with
torch pinned, when the app uses torch, so a bump is a one-line change), then an
app-code change, then one small dependency added, then torch bumped. The Dockerfile
contenders need a requirements.txt; for a pyproject.toml app it is written from
``[project].dependencies`` into their build context, never into the app.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

# One small, pure-Python package none of the samples uses.
SMALL_DEPENDENCY = "humanize==4.17.0"
TORCH_PIN_RE = re.compile(r"^torch\s*==\s*[^\s;#]+", re.M)
ENTRY_MODULES = ("main.py", "app.py", "server.py", "wsgi.py")


class AppError(RuntimeError):
    """The app is in a form the benchmark does not handle."""


@dataclass
class AppCopy:
    """A copy of ``source`` in ``directory`` that the benchmark edits."""

    source: Path
    directory: Path
    code_changes: int = 0

    @classmethod
    def make(cls, source: Path, directory: Path) -> AppCopy:
        if directory.exists():
            shutil.rmtree(directory)
        shutil.copytree(source, directory)
        app = cls(source, directory)
        app.requirements()  # fails early on a form we cannot read
        return app

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def pyproject(self) -> Path:
        return self.directory / "pyproject.toml"

    @property
    def requirements_file(self) -> Path:
        return self.directory / "requirements.txt"

    def requirements(self) -> list[str]:
        """The app's declared requirements, one specifier each."""
        if self.requirements_file.exists():
            lines = self.requirements_file.read_text().splitlines()
            return [
                line.strip()
                for line in lines
                if line.strip() and not line.lstrip().startswith(("#", "-"))
            ]
        if self.pyproject.exists():
            project = tomllib.loads(self.pyproject.read_text()).get("project", {})
            return list(project.get("dependencies", []))
        raise AppError(f"{self.source}: no requirements.txt or pyproject.toml")

    def requirements_txt(self) -> str:
        """requirements.txt text for the Dockerfile contenders."""
        if self.requirements_file.exists():
            return self.requirements_file.read_text()
        return "".join(f"{requirement}\n" for requirement in self.requirements())

    def _add_requirement(self, requirement: str) -> None:
        if self.requirements_file.exists():
            text = self.requirements_file.read_text()
            if not text.endswith("\n"):
                text += "\n"
            self.requirements_file.write_text(text + requirement + "\n")
            return
        text = self.pyproject.read_text()
        new, count = re.subn(
            r"^(dependencies\s*=\s*\[)",
            rf'\1\n    "{requirement}",',
            text,
            count=1,
            flags=re.M,
        )
        if count != 1:
            raise AppError(f"{self.pyproject}: no `dependencies = [` line to add to")
        self.pyproject.write_text(new)

    def _declaration(self) -> Path:
        if self.requirements_file.exists():
            return self.requirements_file
        return self.pyproject

    def torch_pin(self) -> str | None:
        for requirement in self.requirements():
            if TORCH_PIN_RE.match(requirement):
                return requirement.split("==", 1)[1].strip()
        return None

    def pin_torch(self, version: str) -> None:
        """Pin torch to ``version``: replace the pin, or add one."""
        path = self._declaration()
        text = path.read_text()
        pattern = re.compile(r"^(\s*\"?)torch\s*==\s*[^\s;#\",]+", re.M)
        if pattern.search(text):
            path.write_text(pattern.sub(rf"\g<1>torch=={version}", text, count=1))
        else:
            self._add_requirement(f"torch=={version}")

    def add_dependency(self, requirement: str = SMALL_DEPENDENCY) -> None:
        self._add_requirement(requirement)

    def entry_module(self) -> Path:
        for name in ENTRY_MODULES:
            if (self.directory / name).exists():
                return self.directory / name
        found = sorted(self.directory.glob("*.py"))
        if not found:
            raise AppError(f"{self.source}: no Python module to change")
        return found[0]

    def change_code(self) -> None:
        """A change to the app's code that touches nothing it depends on."""
        self.code_changes += 1
        module = self.entry_module()
        module.write_text(
            module.read_text()
            + f"\n\nBENCHMARK_REVISION = {self.code_changes}  # app-code change\n"
        )

    def start_command(self) -> list[str]:
        """The web command a Dockerfile would give, on port 8080."""
        procfile = self.directory / "Procfile"
        if procfile.exists():
            for line in procfile.read_text().splitlines():
                if line.startswith("web:"):
                    return ["bash", "-c", line[4:].strip()]
        module = self.entry_module()
        source = module.read_text()
        if "FastAPI(" in source or "Starlette(" in source:
            return [
                "uvicorn",
                f"{module.stem}:app",
                "--host",
                "0.0.0.0",
                "--port",
                "8080",
            ]
        if "Flask(" in source:
            return [
                "gunicorn",
                "--bind",
                "0.0.0.0:8080",
                "--timeout",
                "300",
                f"{module.stem}:app",
            ]
        return ["python", module.name]
