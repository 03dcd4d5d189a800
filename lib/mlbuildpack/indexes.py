"""Package indexes: which one serves what, and how to name them without secrets.

Two groups of indexes take part in a build. The torch family (see
``classify.TORCH_FAMILY``) comes from the PyTorch index of the chosen variant, the CPU
one by default. Everything else comes from the app's own settings: ``PIP_INDEX_URL``
and ``PIP_EXTRA_INDEX_URL`` from the environment, then the option lines of its
requirements files, PyPI when neither says otherwise. An option line in the app's
files that points at a PyTorch index is not applied to every package, as pip would;
it is scoped to the torch family (field case F09).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit, urlunsplit

PYPI_SIMPLE = "https://pypi.org/simple"
# The variables that set the default index and the extra ones, later ones winning.
DEFAULT_INDEX_VARIABLES = ("PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX")
EXTRA_INDEX_VARIABLES = ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX")
PYTORCH_HOSTS = ("download.pytorch.org",)


def redact(url: str) -> str:
    """Return ``url`` with any user name and password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(
        (parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment)
    )


_URL_WITH_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_text(text: str) -> str:
    """Replace credentials in every URL inside free text, e.g. a tool's output."""
    return _URL_WITH_CREDENTIALS.sub(r"\1***@", text)


def is_pytorch_index(url: str, torch_index_url: str) -> bool:
    """True when ``url`` points at a PyTorch wheel index or at the configured one."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host in PYTORCH_HOSTS:
        return True
    return url.rstrip("/") == torch_index_url.rstrip("/")


@dataclass(frozen=True)
class AppIndexes:
    """The indexes (and find-links) that serve everything but the torch family."""

    default: str = PYPI_SIMPLE
    extra: Tuple[str, ...] = ()
    find_links: Tuple[str, ...] = ()
    options: Tuple[str, ...] = ()
    scoped_to_torch: Tuple[str, ...] = field(default=())
    no_index: bool = False
    # Hosts pip's --trusted-host names: plain HTTP or unverified HTTPS allowed.
    insecure_hosts: Tuple[str, ...] = ()

    def uv_args(self) -> List[str]:
        """The uv command-line flags for these indexes (credentials included)."""
        if self.no_index:
            args = ["--no-index"]
            for link in self.find_links:
                args += ["--find-links", link]
            return args + list(self.options) + self.host_args()
        args = ["--default-index", self.default]
        for url in self.extra:
            args += ["--index", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args + list(self.options) + self.host_args()

    def host_args(self) -> List[str]:
        """uv's flags for the trusted hosts, which apply to every index."""
        return [
            arg
            for host in self.insecure_hosts
            for arg in ("--allow-insecure-host", host)
        ]

    def identity(self) -> List[str]:
        """What decides a layer's contents, safe to store: URLs without secrets."""
        return [
            redact(self.default),
            *(redact(u) for u in self.extra),
            *(redact(u) for u in self.find_links),
            *self.options,
            *(f"trusted host {host}" for host in self.insecure_hosts),
        ]


def app_indexes(
    env: Mapping[str, str],
    index_url: Optional[str],
    extra_index_urls: Sequence[str],
    find_links: Sequence[str],
    options: Sequence[str],
    torch_index_url: str,
    no_index: bool = False,
    trusted_hosts: Sequence[str] = (),
) -> AppIndexes:
    """Combine the environment and the requirements' option lines.

    The environment wins over the files for the default index, as it does for pip;
    uv's own variables (``UV_DEFAULT_INDEX``, ``UV_INDEX_URL``, ``UV_INDEX``,
    ``UV_EXTRA_INDEX_URL``) count as pip's do, and win over them. PyTorch index URLs
    are taken out and reported in ``scoped_to_torch``.
    """
    scoped: List[str] = []
    default = PYPI_SIMPLE
    defaults = (
        index_url,
        *(env.get(name) or None for name in DEFAULT_INDEX_VARIABLES),
    )
    for candidate in defaults:
        if candidate is None:
            continue
        if is_pytorch_index(candidate, torch_index_url):
            scoped.append(candidate)
        else:
            default = candidate
    extras: List[str] = []
    env_extras = [
        # UV_INDEX entries may be named: ``name=https://...``.
        entry.split("=", 1)[1] if "=" in entry.split("://", 1)[0] else entry
        for name in EXTRA_INDEX_VARIABLES
        for entry in (env.get(name) or "").split()
    ]
    for url in [*extra_index_urls, *env_extras]:
        if is_pytorch_index(url, torch_index_url):
            scoped.append(url)
        elif url not in extras:
            extras.append(url)
    links: List[str] = []
    for link in [*find_links, *(env.get("PIP_FIND_LINKS") or "").split()]:
        if is_pytorch_index(link, torch_index_url):
            scoped.append(link)
        elif link not in links:
            links.append(link)
    return AppIndexes(
        default=default,
        extra=tuple(extras),
        find_links=tuple(links),
        options=tuple(options),
        scoped_to_torch=tuple(scoped),
        no_index=no_index,
        insecure_hosts=tuple(
            dict.fromkeys(
                host
                for host in [
                    *trusted_hosts,
                    *(env.get("PIP_TRUSTED_HOST") or "").split(),
                ]
                if host
            )
        ),
    )
