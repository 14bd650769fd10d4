"""Shared fixtures: an in-process py-evm chain, a service runtime on it, and API keys per role.

Database tests run on SQLite, and also on PostgreSQL when QIYEMA_TEST_POSTGRES_URL names a
server (`make test` starts one through `scripts/test-python` whenever PostgreSQL can be started
on the machine, and says which databases ran): each test then gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from chain.client import ChainClient
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.main import create_app
from materials_api.platform.config import Settings
from chain.clock import MovableClock
from materials_api.platform.runtime import Runtime

POSTGRES_URL = os.environ.get("QIYEMA_TEST_POSTGRES_URL")
# Keystores the tests create use a cheap scrypt cost (a production key costs about a second and
# 256 MiB to open); the files are the same standard format. Inherited by the CLI and servers
# the tests start. tests/materials_api/test_keys.py checks the standard cost.
os.environ.setdefault("QIYEMA_KEYSTORE_SCRYPT_N", "1024")
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
# The crypto profile every service in the run is set up with (issue 28: the whole suite passes
# under both): intl unless QIYEMA_TEST_PROFILE=gm. Inherited by the CLI and servers the tests start.
PROFILE = os.environ.get("QIYEMA_TEST_PROFILE", "intl")
if PROFILE != "intl":
    os.environ.setdefault("QIYEMA_CRYPTO_PROFILE", PROFILE)
CODE_VERSION = "2" if PROFILE == "gm" else "1"  # the format version of the codes this run's services sign
MATERIAL_BUNDLE, RECORD_BUNDLE = (3, 3) if PROFILE == "gm" else (1, 2)  # proof bundle versions (3: SM3)


def stranger_code_signer():
    """A key of nobody the service knows, of this run's profile: what a forger signs codes with
    (a key of the other profile would be refused for its format, never reaching the signature)."""
    import secrets

    from chain.crypto_profile import Sm2Signer
    from chain.signers import LocalSigner

    return Sm2Signer.generate() if PROFILE == "gm" else LocalSigner(secrets.token_bytes(32))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped afterwards."""
    name = f"qiyema_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qiyema.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def evm() -> ChainClient:
    return ChainClient.in_process(poll_interval=0.01, timeout=10)


@pytest.fixture
def anvil_node(tmp_path):
    """A real anvil node of its own (state under tmp_path), stopped at the end."""
    from chain.node import AnvilNode

    node = AnvilNode(tmp_path / "node", port=free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # No follower runs beside these in-process apps (as no anchorer does): no mirror-age check;
    # the mirror's own tests step it and check the age (tests/materials_api/test_mirror.py).
    # py-evm seals a block only per transaction: its head's age says nothing (chain_max_head_age=0).
    return Settings(home=tmp_path / "home", database_url=database_url, chain_rpc_url="in-process", mirror_max_age=0,
                    chain_max_head_age=0, register_batch_size=50, crypto_profile=PROFILE)


@pytest.fixture
def runtime(settings: Settings, evm: ChainClient):
    """The service's runtime on the in-process chain, with a clock the test may move forward
    (`runtime.clock.advance(s)`) instead of sleeping past an expiry."""
    rt = Runtime.open(settings, client=evm, clock=MovableClock())
    yield rt
    rt.close()


@pytest.fixture
def api(runtime: Runtime):
    with TestClient(create_app(runtime, reconcile=False)) as client:
        yield client


@pytest.fixture
def keys(runtime: Runtime) -> dict[str, str]:
    """One API key per role (Authorization header values), plus a revoked one."""
    out: dict[str, str] = {}
    with runtime.sessions.begin() as s:
        for role in Role:
            scope = {"issuer": "permit.food", "enterprise": "91350100M000100Y43"}.get(role.value)
            _, plain = create_key(s, f"org-{role.value}", role, scope)
            out[role.value] = f"Bearer {plain}"
        revoked, plain = create_key(s, "org-revoked", Role.REGISTRAR)
        from datetime import datetime, timezone

        revoked.revoked_at = datetime.now(timezone.utc)
        out["revoked"] = f"Bearer {plain}"
    grant_writers(runtime)
    return out


def grant_writers(runtime: Runtime) -> int:
    """What the background worker does for new writing organisations (never a request): each
    gets its own funded chain account holding its category's issuer role. In-process apps run
    no background loop, so a test calls it after making writer keys."""
    from materials_api.records.service import RecordService

    return RecordService(runtime.sessions, runtime.chain, runtime.settings).grant_writers()


class MinioServer:
    """A real MinIO server on loopback, started from the binary scripts/install-minio builds."""

    def __init__(self, data_dir: Path):
        import subprocess

        repo = Path(__file__).resolve().parents[1]
        built = subprocess.run([str(repo / "scripts" / "install-minio")], capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"MinIO could not be built: {built.stderr.strip()[-2000:]}")
        self.binary = built.stdout.strip().splitlines()[-1]
        self.data_dir = data_dir
        self.port = free_port()
        self.console_port = free_port()
        self.access_key = "qiyema-test"
        self.secret_key = uuid.uuid4().hex
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        import subprocess
        import time

        import requests

        env = {**os.environ, "MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key,
               "MINIO_BROWSER": "off"}
        self.log = open(self.data_dir.parent / "minio.log", "ab")
        self.proc = subprocess.Popen([self.binary, "server", str(self.data_dir), "--address", self.endpoint,
                                      "--console-address", f"127.0.0.1:{self.console_port}", "--quiet"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"minio exited with {self.proc.returncode}")
            try:
                if requests.get(f"http://{self.endpoint}/minio/health/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("minio did not become ready")

    def stop(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture(scope="session")
def minio(tmp_path_factory):
    base = tmp_path_factory.mktemp("minio")
    (base / "data").mkdir()
    server = MinioServer(base / "data")
    server.start()
    yield server
    server.stop()


def pytest_collection_modifyitems(config, items):
    """Under tools/mutation (mutmut runs a mutant's tests in its work copy, beside the durations
    it measured): the fastest tests first, so the first test that notices a mutant ends its run
    (mutmut stops at the first failure) before the slow end-to-end ones start. Nothing else
    changes order."""
    stats = Path("mutmut-stats.json")
    if not os.environ.get("MUTANT_UNDER_TEST") or not stats.is_file():
        return
    import json

    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
