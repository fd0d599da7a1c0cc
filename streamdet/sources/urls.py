"""Stream URLs: recognising them, and keeping their credentials out of every message.

Camera URLs usually carry a user name and password (``rtsp://admin:secret@192.168.1.10/stream``)
and FFmpeg puts the whole URL into its error text, so anything streamdet shows (source names, log
lines, error messages) goes through :func:`mask_url` first. Masking works on any text, not only on
a bare URL: it finds every ``scheme://`` in it and replaces the userinfo with ``***`` and the
values of secret-looking query parameters (``password=``, ``token=``, ``api_key=``, ...) with
``***`` too.

The userinfo ends at the last ``@`` before the query (``?``) or fragment (``#``). That is wider
than FFmpeg's rule (last ``@`` before the first ``/``) on purpose: a password holding ``/``, ``@``
or ``:`` (which FFmpeg misreads, and then prints) is still hidden whole. When there is no ``@``
before the query and the text before it looks like ``user:pa`` (a password holding ``?`` or
``#``), everything up to the last ``@`` is masked. A path holding ``@`` is therefore masked too:
this can hide a little more than needed, never less. A URL inside another one's query
(``?next=rtsp://...``) is masked as well.
"""

from __future__ import annotations

import re

#: URL schemes ``open_source`` accepts for network streams.
SUPPORTED_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")

MASK = "***"

# A scheme of two or more characters (so a Windows drive "C:" never reads as one), "://", then
# everything up to the next whitespace: quotes and brackets are kept inside so that a password
# holding them is still found, and the masking below only touches the userinfo and query values.
_URL = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]+://)(\S*)")
_IS_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
_SECRET_PARAM = re.compile(
    r"([?&;](?:[\w.\-]*[_.\-])?(?:password|passwd|pass|pwd|token|key|auth|secret|signature|sig)=)"
    r"([^&;#\s]*)",
    re.IGNORECASE,
)


def is_url(spec: str) -> bool:
    """True when ``spec`` is a string that starts with ``scheme://`` (any scheme)."""
    return isinstance(spec, str) and _IS_URL.match(spec.strip()) is not None


def _mask_one(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    rest = _URL.sub(_mask_one, rest)  # URLs nested in this one's query
    end = len(rest)
    for stop in "?#":
        found = rest.find(stop)
        if found >= 0:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at < 0:
        # A password holding "?" or "#" ("user:pa?ss@host"): what comes before the "?" looks
        # like "user:pa" (a ":" and no "/"), so mask up to the last "@".
        head = rest[:end]
        if ":" in head and "/" not in head:
            at = rest.rfind("@")
    if at >= 0:
        rest = MASK + rest[at:]
    rest = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, rest)
    return scheme + rest


def mask_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``.

    ``"rtsp://user:pass@host/x"`` becomes ``"rtsp://***@host/x"`` (a user name alone is masked
    too), and secret query values (``?token=abc`` -> ``?token=***``). Text without URLs is
    returned unchanged, so it is safe to apply to any message or log line.
    """
    return _URL.sub(_mask_one, text)
