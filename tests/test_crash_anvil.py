"""Crash safety: the worker is killed (SIGKILL) between each pair of steps of upload and
anchoring; after a restart nothing is lost and nothing is anchored twice. On a real anvil node."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from materials_api.bank.anchoring import Anchorer
from materials_api.bank.catalogue import Catalogue
from materials_api.bank.materials import MaterialService
from materials_api.bank.models import AnchorBatch, Material
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime
from tests.conftest import free_port

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[1]
FAILPOINTS = ["upload.after_db", "upload.after_store", "anchor.after_build", "anchor.after_send",
              "anchor.after_receipt"]


def worker(home: Path, url: str, failpoint: str | None):
    # This run's crypto profile stays (the test opens the same home after the worker).
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYEMA_") or k == "QIYEMA_CRYPTO_PROFILE"}
    if failpoint:
        env["QIYEMA_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "tests.crash_worker", str(home), url], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_kill_at_each_step_then_restart_loses_nothing_and_anchors_once(tmp_path, anvil_node, failpoint):
    home = tmp_path / "home"
    crashed = worker(home, anvil_node.url, failpoint)
    assert crashed.returncode == -9, crashed.stderr  # it really died at the failpoint
    # Restart: the service's start-up reconciliation, then the client retries.
    runtime = Runtime.open(Settings(home=home, chain_rpc_url=anvil_node.url))
    try:
        service = MaterialService(runtime.sessions, runtime.chain, runtime.storage, Catalogue())
        service.reconcile_storage(older_than=0)
        anchorer = Anchorer(runtime.sessions, runtime.chain, batch_size=16, max_wait=0)
        anchorer.requeue_lost()
        anchorer.run_once(force=True)
    finally:
        runtime.close()
    retried = worker(home, anvil_node.url, None)
    assert retried.returncode == 0, retried.stderr
    runtime = Runtime.open(Settings(home=home, chain_rpc_url=anvil_node.url))
    try:
        with runtime.sessions() as s:
            materials = list(s.scalars(select(Material).order_by(Material.id)))
            batches = list(s.scalars(select(AnchorBatch)))
        assert len(materials) == 3, [(m.id, m.state) for m in materials]  # nothing lost, no duplicate
        assert {m.state for m in materials} == {"anchored"}
        assert len({m.sha256 for m in materials}) == 3
        assert all(runtime.storage.exists("e1", m.sha256) for m in materials)
        assert {b.state for b in batches} == {"confirmed"}
        ledger = runtime.chain.ledger
        events = list(runtime.chain.client.events(ledger.contract.events.BatchAnchored, 0))
        assert len(events) == len(batches)  # every batch anchored exactly once
        assert {e["args"]["root"] for e in events} == {b.root for b in batches}
        assert sum(b.leaf_count for b in batches) == 3
    finally:
        runtime.close()


def test_material_verify_command_needs_only_the_file_the_bundle_and_a_node(tmp_path, anvil_node):
    home = tmp_path / "home"
    assert worker(home, anvil_node.url, None).returncode == 0
    runtime = Runtime.open(Settings(home=home, chain_rpc_url=anvil_node.url))
    try:
        service = MaterialService(runtime.sessions, runtime.chain, runtime.storage, Catalogue())
        with runtime.sessions() as s:
            material = s.scalar(select(Material).order_by(Material.id))
        bundle = service.bundle(material).dumps()
        content = b"".join(service.content(material))
        trust_list, governor = json.dumps(runtime.chain.trust_list.to_json()), runtime.chain.governor.address
    finally:
        runtime.close()
    (tmp_path / "trust.json").write_text(trust_list)  # published by the service, pinned by its governor
    (tmp_path / "lease.pdf").write_bytes(content)
    (tmp_path / "lease.proof.json").write_text(bundle)
    (tmp_path / "altered.pdf").write_bytes(content[:-1] + b"X")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYEMA_")}
    env["QIYEMA_HOME"] = str(tmp_path / "nothing-here")  # no database, no keys: only the chain
    cli = [sys.executable, "-m", "materials_api.cli", "material", "verify", "--trust-list", str(tmp_path / "trust.json"),
           "--governor", governor]
    ok = subprocess.run(cli + [str(tmp_path / "lease.pdf"), "--proof", str(tmp_path / "lease.proof.json"),
                               "--rpc", anvil_node.url], env=env, capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "verdict: VALID" in ok.stdout
    for line in ("integrity", "proof", "anchor", "issuer", "status"):
        assert line in ok.stdout
    bad = subprocess.run(cli + [str(tmp_path / "altered.pdf"), "--proof", str(tmp_path / "lease.proof.json"),
                                "--rpc", anvil_node.url], env=env, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "hash_mismatch" in bad.stdout
    down = subprocess.run(cli + [str(tmp_path / "lease.pdf"), "--proof", str(tmp_path / "lease.proof.json"),
                                 "--rpc", f"http://127.0.0.1:{free_port()}"], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    assert down.returncode == 1 and "verdict: ERROR" in down.stdout
    (tmp_path / "broken.json").write_text("{not json")
    broken = subprocess.run(cli + [str(tmp_path / "lease.pdf"), "--proof", str(tmp_path / "broken.json")],
                            env=env, capture_output=True, text=True, cwd=ROOT)
    assert broken.returncode == 2 and "error:" in broken.stderr and "Traceback" not in broken.stderr
