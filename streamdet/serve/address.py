"""Where the live view listens and who may watch it: ``--serve [HOST:]PORT`` and its token.

Bound to 127.0.0.1 unless a host is named. Any other address than a loopback one exposes a
camera to the network, so it needs a token: the one given (``--serve-token``) or one generated
with ``secrets.token_urlsafe`` and printed once with the URL. These checks run before the model
loads, so a typo or a port in use costs nothing.
"""

from __future__ import annotations

import errno
import ipaddress
import secrets
import socket
from dataclasses import dataclass

from streamdet.errors import ConfigError, MissingDependencyError

#: How to get the optional web server.
SERVE_INSTALL = 'pip install "streamdet[serve]"'

DEFAULT_HOST = "127.0.0.1"

#: Shortest token accepted from the caller (a generated one has 32 random bytes).
MIN_TOKEN_CHARS = 8


@dataclass(frozen=True)
class ServeAddress:
    """A checked listening address and the token (None: no token needed, loopback only)."""

    host: str
    port: int
    token: str | None = None
    generated: bool = False  # True: streamdet made the token, so it must be shown once

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_serve(spec: str, token: str | None = None) -> ServeAddress:
    """``"8080"``, ``"0"`` (any free port), ``"0.0.0.0:8080"``, ``"[::1]:8080"`` -> an address.

    A non-loopback host without ``token`` gets a generated one. One-line ``ConfigError`` for a
    malformed spec, a port outside 0..65535 or a token too short to guess-proof.
    """
    text = str(spec).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if sep and not host:
        raise ConfigError(f"--serve {spec!r}: give HOST:PORT or PORT, e.g. 127.0.0.1:8080")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(
            f"--serve {spec!r}: the port must be a number 0..65535 (0: any free port), "
            "e.g. --serve 8080 or --serve 0.0.0.0:8080"
        )
    if token is not None:
        token = token.strip()
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ConfigError(
                f"--serve-token must be at least {MIN_TOKEN_CHARS} characters without spaces; "
                "leave it out to have one generated"
            )
    generated = False
    if token is None and not is_loopback(host):
        token, generated = secrets.token_urlsafe(32), True
    return ServeAddress(host, int(port_text), token, generated)


def check_port_free(address: ServeAddress) -> None:
    """A one-line ``ConfigError`` when ``address`` cannot be listened on (in use, no such
    address); port 0 is always free. Checked before the model loads; the server's own bind
    reports the same way if the port is taken in between."""
    if address.port == 0:
        return
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"--serve: cannot resolve host {address.host!r}: {err}") from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as err:
            raise bind_error(address, err) from None


def bind_error(address: ServeAddress, err: OSError) -> ConfigError:
    """The one-line error for a failed bind."""
    where = f"{address.host}:{address.port}"
    if err.errno == errno.EADDRINUSE:
        return ConfigError(
            f"--serve: port {address.port} on {address.host} is in use; "
            "pick another port, or 0 for any free one"
        )
    if err.errno == errno.EACCES:
        return ConfigError(f"--serve: not allowed to listen on {where} (ports below 1024: root)")
    return ConfigError(f"--serve: cannot listen on {where}: {err.strerror or err}")


def require_aiohttp() -> None:
    """A one-line ``MissingDependencyError`` naming the extra when aiohttp is absent."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            f"--serve needs the optional web server aiohttp: {SERVE_INSTALL}"
        ) from None
