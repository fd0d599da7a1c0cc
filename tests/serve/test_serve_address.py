"""``--serve [HOST:]PORT`` and the token rules, checked before anything is served."""

from __future__ import annotations

import socket
import sys

import pytest

from streamdet.errors import ConfigError, MissingDependencyError
from streamdet.serve import check_port_free, is_loopback, parse_serve, require_aiohttp


@pytest.mark.parametrize(
    ("spec", "host", "port"),
    [
        ("8080", "127.0.0.1", 8080),
        ("0", "127.0.0.1", 0),
        ("localhost:9000", "localhost", 9000),
        ("127.0.0.5:1", "127.0.0.5", 1),
        ("[::1]:8080", "::1", 8080),
    ],
)
def test_loopback_addresses_need_no_token(spec, host, port):
    address = parse_serve(spec)
    assert (address.host, address.port, address.token, address.loopback) == (
        host,
        port,
        None,
        True,
    )


@pytest.mark.parametrize("spec", ["0.0.0.0:8080", "192.168.1.20:80", "[::]:0", "example.org:1"])
def test_any_other_host_gets_a_generated_token(spec):
    first, second = parse_serve(spec), parse_serve(spec)
    assert not first.loopback and first.generated
    assert first.token and len(first.token) >= 40 and first.token != second.token


def test_a_given_token_is_used_as_is_also_on_loopback():
    address = parse_serve("0.0.0.0:8080", "s3cret-token")
    assert (address.token, address.generated) == ("s3cret-token", False)
    assert parse_serve("8080", "s3cret-token").token == "s3cret-token"


@pytest.mark.parametrize(
    ("spec", "token", "words"),
    [
        ("http", None, "port must be a number"),
        ("127.0.0.1:", None, "port must be a number"),
        ("70000", None, "0..65535"),
        ("-1", None, "port must be a number"),
        (":8080", None, "HOST:PORT"),
        ("8080", "short", "at least 8"),
        ("8080", "has a space", "without spaces"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, token, words):
    with pytest.raises(ConfigError, match=words) as info:
        parse_serve(spec, token)
    assert "\n" not in str(info.value)


def test_loopback_check():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("evil.example")


@pytest.mark.network
def test_a_port_in_use_is_refused_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            check_port_free(parse_serve(f"127.0.0.1:{port}"))
    check_port_free(parse_serve("127.0.0.1:0"))  # any free port: nothing to check


def test_missing_aiohttp_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "streamdet\[serve\]"'):
        require_aiohttp()
