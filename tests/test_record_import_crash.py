"""`qiyema records import` killed (SIGKILL) at several points, then run again: every valid line
is one record, issued on chain once, and the import's counts are exact. On a real anvil node,
through the command line."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from chain.ledger import RecordStatus
from codes.uscc import generate
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime
from materials_api.records.models import Record, RecordImport
from materials_api.registry.service import EnterpriseService

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[1]
USCCS = [generate(random.Random(7000 + n)) for n in range(5)]
LINES, BAD = 60, {10, 33}  # lines 11 and 34 name an unknown kind


def prepare(home: Path, url: str, path: Path) -> str:
    runtime = Runtime.open(Settings(home=home, chain_rpc_url=url))
    try:
        enterprises = EnterpriseService(runtime.sessions, runtime.chain)
        for n, uscc in enumerate(USCCS):
            enterprises.register(uscc, f"示例企业{n}")
        with runtime.sessions.begin() as s:
            _, key = create_key(s, "市场监管局食品科", Role.ISSUER, "permit.food")
    finally:
        runtime.close()
    with open(path, "w", encoding="utf-8") as f:
        for n in range(LINES):
            f.write(json.dumps({"uscc": USCCS[n % 5], "kind": "no_such_kind" if n in BAD else "food_business",
                                "number": f"JY{n:014d}", "data": {"n": n}, "valid_until": "2030-12-31",
                                "source_id": f"FP-{n}", "source_version": 1}) + "\n")
    return key


def run_import(home: Path, url: str, key: str, path: Path, failpoint: str | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYEMA_")}
    env.update(QIYEMA_HOME=str(home), QIYEMA_CHAIN_RPC_URL=url, QIYEMA_API_KEY=key)
    if failpoint:
        env["QIYEMA_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "materials_api.cli", "records", "import", str(path), "--chunk", "16"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def witnesses(home: Path) -> list[int]:
    """The import's witnessing processes still running for `home`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (b"--multiprocessing-fork" in (proc / "cmdline").read_bytes()
                    and f"QIYEMA_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0")):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


# The importing process killed (writing ahead), or its witnessing process (sending, confirming).
@pytest.mark.parametrize("failpoint", ["records.import.before_commit", "records.import.after_chunk",
                                       "records.after_send", "records.after_receipt"])
def test_an_import_killed_then_run_again_issues_every_line_once(tmp_path, anvil_node, failpoint):
    home, path = tmp_path / "home", tmp_path / "permits.jsonl"
    key = prepare(home, anvil_node.url, path)
    crashed = run_import(home, anvil_node.url, key, path, failpoint)
    if failpoint.startswith("records.import."):
        assert crashed.returncode == -9, crashed.stderr  # it really died there
    else:  # the witnessing process died there: the command says so, exit 3, no stack trace
        assert crashed.returncode == 3, crashed.stderr
        assert "witnessing process stopped (killed by signal 9)" in crashed.stderr
        assert "Traceback" not in crashed.stderr
    deadline = time.monotonic() + 10
    while witnesses(home) and time.monotonic() < deadline:  # an orphan stops by itself
        time.sleep(0.1)
    assert witnesses(home) == []
    resumed = run_import(home, anvil_node.url, key, path, None)
    assert resumed.returncode == 1, resumed.stderr  # some lines were rejected: said by the exit status
    assert f"lines {LINES}: applied {LINES - len(BAD)}, unchanged 0, rejected {len(BAD)}" in resumed.stdout
    runtime = Runtime.open(Settings(home=home, chain_rpc_url=anvil_node.url))
    try:
        with runtime.sessions() as s:
            records = s.scalars(select(Record)).all()
            imports = s.scalar(select(func.count()).select_from(RecordImport))
        assert imports == 1
        assert sorted(r.source_id for r in records) == sorted(f"FP-{n}" for n in range(LINES) if n not in BAD)
        assert {r.chain_state for r in records} == {"confirmed"}
        ledger = runtime.chain.ledger
        assert all(ledger.record_of(r.root, r.leaf_index).status == RecordStatus.VALID for r in records)
        # Issued once: one RecordsIssued event per batch, and as many batches as roots held.
        issued = runtime.chain.ledger.contract.events.RecordsIssued().get_logs(from_block=0)
        assert len(issued) == len({r.root for r in records})
        assert sum(e.args.count for e in issued) == len(records)
    finally:
        runtime.close()
