"""A directory of wheels served as a PEP 503 simple index on 127.0.0.1.

The server is pypiserver, run in-process: its WSGI app answers ``/simple/``,
``/simple/<project>/`` (with ``#sha256=`` fragments) and ``/packages/<file>``, and
it checks basic-auth itself through an ``auther`` callback, so no htpasswd file or
passlib is needed. It was chosen over a hand-written static tree because it handles
the cases we would otherwise have to get right ourselves (name normalisation, local
versions such as ``2.13.0+cpu``, the 401 challenge) and it starts in well under a
second. A thin WSGI wrapper around it records every request, so tests can assert
which files a build downloaded.

Each request is served on its own thread (uv downloads in parallel). Only loopback
is bound, on a free port the OS picks.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

with warnings.catch_warnings():
    # Its bundled bottle imports the cgi module, deprecated since Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pypiserver  # type: ignore[import-untyped]

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    user: str | None

    @property
    def filename(self) -> str | None:
        """The file name for a ``/packages/<file>`` request, else None."""
        prefix = "/packages/"
        if self.path.startswith(prefix):
            return urllib.parse.unquote(self.path[len(prefix) :])
        return None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class IndexServer:
    """Serve ``root`` as a simple index until :meth:`stop`.

    With ``username`` and ``password`` every listing and download needs those
    basic-auth credentials; :attr:`url_with_credentials` carries them.
    """

    def __init__(
        self,
        root: Path,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.root = root
        self.username = username
        self.password = password
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> Self:
        if self.username is not None:
            auth = {
                "authenticate": ["list", "download"],
                "auther": self._check_credentials,
            }
        else:
            auth = {"authenticate": [], "password_file": "."}
        # pypiserver logs a line per request through logging; tests have no use
        # for it and the request log below is more precise.
        logging.getLogger("pypiserver").setLevel(logging.WARNING)
        app = pypiserver.app(
            roots=[str(self.root)],
            disable_fallback=True,
            **auth,
        )
        self._server = make_server(
            "127.0.0.1",
            0,
            self._recording(app),
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name=f"index-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the index is not running"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The simple index URL, without credentials."""
        return f"http://127.0.0.1:{self.port}/simple"

    @property
    def url_with_credentials(self) -> str:
        """The simple index URL with ``user:password@`` in it."""
        if self.username is None:
            return self.url
        user = urllib.parse.quote(self.username, safe="")
        password = urllib.parse.quote(self.password or "", safe="")
        return f"http://{user}:{password}@127.0.0.1:{self.port}/simple"

    # -- request log ------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request since start or the last :meth:`clear_log`."""
        with self._lock:
            return list(self._requests)

    def downloads(self) -> list[str]:
        """File names served successfully, in order."""
        return [
            request.filename
            for request in self.requests
            if request.filename and request.status == 200 and request.method == "GET"
        ]

    def downloaded(self, project: str) -> list[str]:
        """Downloaded wheels of one project (names compared normalised)."""
        wanted = _normalise(project)
        # In a wheel file name the project is everything before the first "-".
        return [
            name
            for name in self.downloads()
            if _normalise(name.split("-", 1)[0]) == wanted
        ]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- internals --------------------------------------------------------------

    def _check_credentials(self, username: str, password: str) -> bool:
        return username == self.username and password == self.password

    def _recording(self, app: WSGIApp) -> WSGIApp:
        def recorded(environ: dict, start_response: Callable[..., Any]) -> Any:
            seen: dict[str, int] = {}

            def start(status: str, headers: list, *args: Any) -> Any:
                seen["status"] = int(status.split(" ", 1)[0])
                return start_response(status, headers, *args)

            body = app(environ, start)
            with self._lock:
                self._requests.append(
                    Request(
                        method=environ["REQUEST_METHOD"],
                        path=environ.get("PATH_INFO", ""),
                        status=seen.get("status", 0),
                        user=_basic_auth_user(environ.get("HTTP_AUTHORIZATION")),
                    )
                )
            return body

        return recorded


def _basic_auth_user(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
