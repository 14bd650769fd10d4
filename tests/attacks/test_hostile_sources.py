"""Attack: feed the service records through the change list it follows (issue 26, item 3) — by
reading it in the clear, redirecting it to another host, answering without being the authority,
flooding it, or dripping it slowly. `qiyema records follow` speaks https with the authority's
credential (bearer token or mutual TLS) and bounds what it reads; nothing is applied otherwise."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select

from materials_api.identity.api_keys import authenticate
from materials_api.identity.models import Role
from materials_api.records.follow import SourceAccess, SourceError, follow_once
from materials_api.records.models import Record
from tests.attacks.conftest import USCC
from tests.attacks.test_cross_organisation import _key, _registered

TOKEN = "authority-feed-token-7f3a"


def _change(n: int) -> dict:
    return {"uscc": USCC, "kind": "food_business", "number": f"JY{n:014d}", "data": {"items": "热食类食品制售"},
            "valid_from": "2025-01-01", "valid_until": "2030-12-31", "source_id": f"FP-{n}", "source_version": 1}


class _Source:
    """An authority's change list. `mode`: what it does to the follower."""

    def __init__(self, tls: ssl.SSLContext | None = None, token: str | None = None):
        self.mode, self.other = "normal", ""
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if token and self.headers.get("Authorization") != f"Bearer {token}":
                    return self._send(401, b"")
                if source.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", source.other + self.path)
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if source.mode == "flood":
                    return self._send(200, b'{"cursor": "1", "change": {}}\n' * 100_000)
                if source.mode == "drip":
                    self.send_response(200)
                    self.end_headers()
                    for _ in range(30):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                after = int(self.path.split("after=")[1].split("&")[0] or 0)
                page = [_change(n) for n in range(3)][after:]
                self._send(200, "".join(json.dumps({"cursor": str(after + i + 1), "change": c}) + "\n"
                                        for i, c in enumerate(page)).encode())

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/changes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _pki(d: Path) -> dict[str, Path]:
    """A CA, the authority's server certificate for 127.0.0.1 and this service's client certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, key, issuer, issuer_key, *, ca=False, san=None, usage=None):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    out = {}

    def write(name, obj):
        path = d / name
        if isinstance(obj, x509.Certificate):
            path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
        else:
            path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        out[name] = path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    write("ca.pem", cert("市场监管局 CA", ca_key, "市场监管局 CA", ca_key, ca=True))
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    write("server.pem", cert("127.0.0.1", server_key, "市场监管局 CA", ca_key,
                             san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], usage=ExtendedKeyUsageOID.SERVER_AUTH))
    write("server.key", server_key)
    write("client.pem", cert("qiyema", client_key, "市场监管局 CA", ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    write("client.key", client_key)
    return out


def _records(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Record))


def test_a_change_list_is_read_only_from_the_authority_over_tls_and_within_bounds(service, tmp_path):
    api, runtime = service
    _registered(api, runtime)
    header = _key(runtime, "杨浦区市场监督管理局", Role.ISSUER, "permit.food")
    with runtime.sessions() as s:
        issuer = authenticate(s, header["Authorization"].removeprefix("Bearer "))
    feed = api.app.state.record_feed

    # In the clear, off this machine: refused before anything is sent.
    with pytest.raises(SourceError) as clear:
        SourceAccess("http://feed.samr.example/changes")
    assert clear.value.code == "source_url"

    pki = _pki(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki["server.pem"], pki["server.key"])
    tls.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the authority serves only the services it certified
    tls.load_verify_locations(pki["ca.pem"])
    source, elsewhere = _Source(tls, token=TOKEN), _Source()
    try:
        def attempt(access, code):
            with pytest.raises(SourceError) as refused:
                follow_once(access, feed, issuer)
            assert refused.value.code == code, refused.value
            assert _records(runtime) == 0

        trusted = dict(ca_file=pki["ca.pem"], client_cert=pki["client.pem"], client_key=pki["client.key"])
        attempt(SourceAccess(source.url, token=TOKEN), "source_unreachable")  # a server of an unknown CA
        attempt(SourceAccess(source.url, token=TOKEN, ca_file=pki["ca.pem"]), "source_unreachable")  # no client cert
        attempt(SourceAccess(source.url, **trusted), "source_status")  # no token: 401
        source.mode, source.other = "redirect", elsewhere.url.rsplit("/", 1)[0]
        attempt(SourceAccess(source.url, token=TOKEN, **trusted), "source_redirect")
        source.mode = "flood"
        attempt(SourceAccess(source.url, token=TOKEN, max_bytes=64 * 1024, **trusted), "source_too_large")
        source.mode = "drip"
        attempt(SourceAccess(source.url, token=TOKEN, timeout=1.0, **trusted), "source_timeout")
        # The authority, its certificate, its token: read and applied.
        source.mode = "normal"
        assert follow_once(SourceAccess(source.url, token=TOKEN, **trusted), feed, issuer) == (3, 0)
        assert _records(runtime) == 3
    finally:
        source.close()
        elsewhere.close()


def test_the_follow_command_refuses_a_clear_text_source_with_a_message(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from materials_api.cli import main as cli

    monkeypatch.setenv("QIYEMA_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(cli, ["records", "follow", "http://feed.samr.example/changes", "--once"])
    assert result.exit_code == 2 and "source_url" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "home").exists()  # refused before anything was opened


def test_a_public_site_never_runs_on_the_managed_development_node(tmp_path, monkeypatch):
    """anvil unlocks funded accounts and lets anyone it answers impersonate any account: `serve`
    refuses an https public URL on it, before starting anything."""
    from click.testing import CliRunner

    from materials_api.cli import main as cli

    monkeypatch.setenv("QIYEMA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QIYEMA_CHAIN_RPC_URL", raising=False)
    monkeypatch.setenv("QIYEMA_PUBLIC_URL", "https://qiyema.yangpu.gov.cn")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "managed development node" in result.output
    assert not (tmp_path / "home" / "node").exists()  # no node was started
