"""The start command: a Procfile as written, else a web server for the app found in
its code (FastAPI through uvicorn, Flask through gunicorn with a long worker timeout,
field case F21), and BP_ML_START_COMMAND over both.

The stand-in uvicorn and gunicorn here really serve HTTP: they import the app object
named on their command line and answer every GET with what they were started with,
so a test can start the image's web process and ask it over loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from buildkit import AppFactory, Build, Builds
from support.index import IndexServer
from support.wheels import WheelFactory, WheelSpec, pypi_wheels

SERVE = """
def _serve(server, target, host, port, settings=None):
    import http.server, importlib, json, os, sys
    sys.path.insert(0, os.getcwd())
    module, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module), attribute)
    body = json.dumps({
        "server": server, "target": target, "app": type(app).__name__,
        "argv": sys.argv[1:], "port": int(port), "settings": settings or {},
    }).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer((host, int(port)), Handler).serve_forever()
"""

UVICORN_MAIN = """
def main():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    parser.add_argument("--workers")
    args, _ = parser.parse_known_args()
    _serve("uvicorn", args.target, args.host, args.port)
"""

GUNICORN_MAIN = """
def main():
    import argparse, os, shlex, sys
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("-b", "--bind")
    parser.add_argument("-k", "--worker-class")
    parser.add_argument("-w", "--workers")
    parser.add_argument("-t", "--timeout")
    # Like gunicorn, each source over the one before: WEB_CONCURRENCY, the app's
    # gunicorn.conf.py, GUNICORN_CMD_ARGS, the command line.
    defaults = {"timeout": "30", "workers": os.environ.get("WEB_CONCURRENCY", "1")}
    if os.path.isfile("gunicorn.conf.py"):
        conf = {}
        exec(open("gunicorn.conf.py").read(), conf)
        defaults.update((k, str(conf[k])) for k in ("timeout", "workers") if k in conf)
    parser.set_defaults(**defaults)
    from_env = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))
    args, _ = parser.parse_known_args(from_env + sys.argv[1:])
    # Like gunicorn: without --bind, $PORT (if set) on all interfaces.
    bind = args.bind or "0.0.0.0:" + os.environ.get("PORT", "8000")
    host, _, port = bind.rpartition(":")
    settings = {"timeout": int(args.timeout), "workers": int(args.workers)}
    _serve("gunicorn", args.target, host, port, settings)
"""

WEB_WHEELS = [
    WheelSpec("fastapi", "0.115.0", extra_code="class FastAPI:\n    pass\n"),
    WheelSpec(
        "flask",
        "3.0.3",
        extra_code="class Flask:\n    def __init__(self, name):\n        pass\n",
    ),
    WheelSpec(
        "uvicorn", "0.30.0", scripts=("uvicorn",), extra_code=SERVE + UVICORN_MAIN
    ),
    WheelSpec(
        "gunicorn", "22.0.0", scripts=("gunicorn",), extra_code=SERVE + GUNICORN_MAIN
    ),
    *(s for s in pypi_wheels() if s.name in ("smalldep", "typing-extensions")),
]

FASTAPI_MAIN = "from fastapi import FastAPI\n\napp = FastAPI()\n"
FLASK_APP = "from flask import Flask\n\nserver = Flask(__name__)\n"
FORCE = {"BP_ML_FORCE_DETECT": "true"}


@pytest.fixture(scope="module")
def web_index(
    wheel_factory: WheelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("web-index")
    wheel_factory.populate(root, WEB_WHEELS)
    with IndexServer(root) as index:
        yield index


@pytest.fixture(scope="module")
def web_builds(builds: Builds, web_index: IndexServer) -> Builds:
    builds.lifecycle.platform_env["PIP_INDEX_URL"] = web_index.url
    return builds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask_web_process(build: Build, env: dict[str, str] | None = None) -> dict:
    """Start the image's ``web`` process on a free $PORT, GET /, stop it."""
    port = free_port()
    outer = build.result.image.lifecycle.outer_env
    run_env = {"PATH": outer["PATH"], "HOME": outer["HOME"], "PORT": str(port)}
    argv, launch_env, cwd = build.image.launch_command(
        process="web", env={**run_env, **(env or {})}
    )
    process = subprocess.Popen(
        argv,
        env=launch_env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                url = f"http://127.0.0.1:{port}/"
                with urllib.request.urlopen(url, timeout=2) as response:
                    return json.loads(response.read())
            except (urllib.error.URLError, ConnectionError) as error:
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"web process exited:\n{output}") from error
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def web_command(build: Build) -> list[str]:
    (web,) = [p for p in build.image.launch["processes"] if p["type"] == "web"]
    assert web["default"] is True
    return web["command"]


# --- FastAPI --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fastapi_app(web_builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": "fastapi==0.115.0\nuvicorn==0.30.0\nsmalldep\n",
            "main.py": FASTAPI_MAIN,
        },
        name="fastapi",
    )
    build = web_builds.run(app_dir, FORCE)
    assert build.result.success, build.result.describe_failure()
    return build


def test_fastapi_app_gets_uvicorn_on_port(fastapi_app: Build) -> None:
    command = web_command(fastapi_app)

    assert command[:2] == ["bash", "-c"]
    assert "uvicorn main:app" in command[2]
    assert "--port ${PORT:-8080}" in command[2]
    assert "--host 0.0.0.0" in command[2]


def test_fastapi_web_process_answers_on_the_given_port(fastapi_app: Build) -> None:
    answer = ask_web_process(fastapi_app)

    assert (answer["server"], answer["target"], answer["app"]) == (
        "uvicorn",
        "main:app",
        "FastAPI",
    )


def test_port_defaults_to_8080_and_a_platform_port_wins(fastapi_app: Build) -> None:
    outer = fastapi_app.result.image.lifecycle.outer_env
    run_env = {"PATH": outer["PATH"], "HOME": outer["HOME"]}

    assert fastapi_app.image.launch_env("web", run_env)["PORT"] == "8080"
    with_port = fastapi_app.image.launch_env("web", {**run_env, "PORT": "9123"})
    assert with_port["PORT"] == "9123"


# --- Flask ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask_app(web_builds: Builds, module_app: AppFactory) -> Build:
    app_dir = module_app(
        {
            "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\nsmalldep\n",
            "app.py": FLASK_APP,
        },
        name="flask",
    )
    build = web_builds.run(app_dir, FORCE)
    assert build.result.success, build.result.describe_failure()
    return build


def test_flask_app_gets_gunicorn_with_a_long_worker_timeout(flask_app: Build) -> None:
    # F21: the default 30 s kills a worker that is still loading a model.
    answer = ask_web_process(flask_app)

    assert (answer["server"], answer["target"], answer["app"]) == (
        "gunicorn",
        "app:server",
        "Flask",
    )
    assert answer["settings"]["timeout"] >= 60
    assert answer["settings"]["workers"] in (1, 2)
    assert "--timeout 300" in web_command(flask_app)[2]


def test_web_concurrency_sets_the_gunicorn_workers(flask_app: Build) -> None:
    answer = ask_web_process(flask_app, {"WEB_CONCURRENCY": "3"})

    assert answer["settings"]["workers"] == 3


def test_gunicorn_cmd_args_override_the_default_timeout_and_workers(
    flask_app: Build,
) -> None:
    # F21: the timeout stays configurable; gunicorn lets its command line win over
    # GUNICORN_CMD_ARGS, so the defaults must not be command-line flags.
    answer = ask_web_process(
        flask_app, {"GUNICORN_CMD_ARGS": "--timeout 900 --workers 4"}
    )

    assert answer["settings"] == {"timeout": 900, "workers": 4}
    assert answer["port"] > 0


def test_gunicorn_conf_py_of_the_app_is_not_overridden(
    web_builds: Builds, app: AppFactory
) -> None:
    app_dir = app(
        {
            "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\n",
            "app.py": FLASK_APP,
            "gunicorn.conf.py": "timeout = 1200\nworkers = 2\n",
        }
    )
    build = web_builds.run(app_dir, FORCE)
    assert build.result.success, build.result.describe_failure()

    answer = ask_web_process(build)

    assert answer["target"] == "app:server"
    assert answer["settings"] == {"timeout": 1200, "workers": 2}


# --- Procfile and BP_ML_START_COMMAND -------------------------------------------------

PROCFILE = "web: gunicorn -k uvicorn.workers.UvicornWorker main:app\n"


def test_procfile_is_respected_as_written(web_builds: Builds, app: AppFactory) -> None:
    app_dir = app(
        {
            "requirements.txt": "fastapi==0.115.0\ngunicorn==22.0.0\nuvicorn\n",
            "main.py": FASTAPI_MAIN,
            "Procfile": PROCFILE,
        }
    )
    build = web_builds.run(app_dir, FORCE)
    assert build.result.success, build.result.describe_failure()

    assert web_command(build) == [
        "bash",
        "-c",
        "gunicorn -k uvicorn.workers.UvicornWorker main:app",
    ]
    answer = ask_web_process(build)
    assert answer["server"] == "gunicorn"
    assert answer["argv"] == ["-k", "uvicorn.workers.UvicornWorker", "main:app"]


def test_start_command_setting_overrides_procfile_and_detection(
    web_builds: Builds, app: AppFactory
) -> None:
    app_dir = app(
        {
            "requirements.txt": "fastapi==0.115.0\nuvicorn\n",
            "main.py": FASTAPI_MAIN,
            "Procfile": PROCFILE,
        }
    )
    build = web_builds.run(
        app_dir, {**FORCE, "BP_ML_START_COMMAND": 'echo custom "$PORT"'}
    )
    assert build.result.success, build.result.describe_failure()

    assert web_command(build) == ["bash", "-c", 'echo custom "$PORT"']
    done = build.image.run(process="web")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "custom 8080"


def test_procfile_saved_with_a_byte_order_mark_and_crlf_is_read(
    web_builds: Builds, app: AppFactory
) -> None:
    # As some Windows editors save it.
    procfile = "\ufeffweb: gunicorn app:server\r\nworker: python worker.py\r\n"
    app_dir = app(
        {
            "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\n",
            "app.py": FLASK_APP,
            "Procfile": procfile.encode("utf-8"),
        }
    )
    build = web_builds.run(app_dir, FORCE)

    assert build.result.success, build.result.describe_failure()
    assert web_command(build) == ["bash", "-c", "gunicorn app:server"]
    assert [p["type"] for p in build.image.launch["processes"]] == ["web", "worker"]
