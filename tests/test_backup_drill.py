"""The backup drill, as an operations team runs it: back up a running service, lose the home,
restore, start, and check that every proof bundle and every code still verifies; and a restore
onto a chain that was reset in the meantime, which must re-anchor and say so."""

import json
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from chain.node import AnvilNode
from tests.conftest import free_port
from tests.processes import run, start_server, stop_server
from tests.test_e2e_anvil import home  # noqa: F401 - the fixture: a fresh home with its own node port

pytestmark = pytest.mark.anvil


@pytest.fixture
def drill_home(home, tmp_path):
    """As an operator runs it: the keystore's passphrase lives outside the home (a secret mount),
    so it survives the home's loss and is never in a backup."""
    secret = tmp_path / "secret-mount" / "keystore-passphrase"
    secret.parent.mkdir()
    secret.write_text("drill passphrase, kept by the operations team\n")
    return {**home, "QIYEMA_KEYSTORE_PASSPHRASE_FILE": str(secret)}


def _companies(demo_output: str) -> list[tuple[str, str]]:
    """(uscc, static code) of every demo company, from what `qiyema demo` prints."""
    return re.findall(r" (9\w{17}): (HTTP://\S+)", demo_output)


def _verdict(r: httpx.Response) -> tuple:
    assert r.status_code == 200, r.text
    body = r.json()
    return body["status"], sorted((c["name"], c["status"], c["reason"]) for c in body["checks"])


def _verify_material(http, content: bytes, bundle: dict) -> tuple:
    return _verdict(http.post("/api/v1/verify/material", files={"file": ("m.pdf", content)},
                              data={"bundle": json.dumps(bundle)}))


def _verify_codes(http, companies) -> dict:
    return {uscc: _verdict(http.post("/api/v1/verify/code", json={"code": code})) for uscc, code in companies}


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


@pytest.mark.parametrize("profile", ["intl", "gm"])
def test_a_running_service_backed_up_and_restored_into_an_empty_home_verifies_as_before(drill_home, tmp_path, profile):
    """Under either crypto profile (issue 28: the README's journey under gm is SM2 codes, SM3
    proofs and SM4 at rest throughout, and the restored home keeps its profile)."""
    home = {**drill_home, "QIYEMA_CRYPTO_PROFILE": profile}
    env = {**home, "QIYEMA_ANCHOR_MAX_WAIT": "3600"}  # materials confirmed now wait for their batch
    companies = _companies(run(env, "demo").stdout)
    assert {code.split("/V/")[1][:1] for _, code in companies} == {"2" if profile == "gm" else "1"}
    first = companies[0][0]
    enterprise = {"Authorization": "Bearer " + run(env, "keys", "create", "--org", "甲", "--role", "enterprise",
                                                   "--scope", first).stdout.strip()}
    clerk = {"Authorization": "Bearer " + run(env, "keys", "create", "--org", "窗口", "--role",
                                              "clerk").stdout.strip()}
    port = free_port()
    server = start_server(env, port, log=tmp_path / "serve-1.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            anchored = [m["id"] for m in http.get("/api/v1/materials", headers=enterprise).json()["items"]]
            assert len(anchored) == 3
            bundles = {i: http.get(f"/api/v1/materials/{i}/proof", headers=enterprise).json() for i in anchored}
            assert {(b["version"], b.get("hash")) for b in bundles.values()} == (
                {(3, "sm3")} if profile == "gm" else {(1, None)})
            contents = {i: http.get(f"/api/v1/materials/{i}/content", headers=enterprise).content for i in anchored}
            # Materials in every state: revoked by a clerk, withdrawn, superseded by a new version,
            # a new one confirmed (waiting for its batch) and one only uploaded.
            assert http.post(f"/api/v1/materials/{anchored[1]}/revoke", json={"reason": "伪造"},
                             headers=clerk).status_code == 200
            assert http.post(f"/api/v1/materials/{anchored[2]}/withdraw", headers=enterprise).status_code == 200
            newer = http.post(f"/api/v1/materials/{anchored[0]}/versions", headers=enterprise,
                              files={"file": ("营业执照副本.pdf", contents[anchored[0]] + b"% v2\n")}).json()
            assert http.post(f"/api/v1/materials/{newer['id']}/confirm", headers=enterprise).status_code == 200
            waiting = http.post("/api/v1/materials", headers=enterprise,
                                files={"file": ("授权书.pdf", b"%PDF-1.4\n% waiting\n%%EOF\n")}).json()
            assert http.post(f"/api/v1/materials/{waiting['id']}/confirm", headers=enterprise).status_code == 200
            uploaded = http.post("/api/v1/materials", headers=enterprise,
                                 files={"file": ("草稿.pdf", b"%PDF-1.4\n% draft\n%%EOF\n")}).json()
            # INVALID at once (the database is the record: `withdrawn`); then the revocations reach
            # the chain (the verdicts then say `revoked`, the chain's own word).
            for i in anchored[1:3]:
                assert _verify_material(http, contents[i], bundles[i])[0] == "INVALID"
                _wait_for(lambda: ("status", "INVALID", "revoked") in _verify_material(http, contents[i], bundles[i])[1])
            before = {i: _verify_material(http, contents[i], bundles[i]) for i in anchored}
            codes_before = _verify_codes(http, companies)
            states_before = {m["id"]: m["state"] for m in http.get("/api/v1/materials", headers=enterprise).json()["items"]}
            assert set(states_before.values()) >= {"superseded", "revoked", "withdrawn", "confirmed", "uploaded"}
            assert before[anchored[0]][0] == "VALID" and codes_before[first][0] == "VALID"

            backup = tmp_path / "backup"
            out = run(env, "backup", str(backup)).stdout  # while the service runs
            assert "node state: yes" in out and "objects:    6 " in out
    finally:
        stop_server(server)

    shutil.rmtree(env["QIYEMA_HOME"])  # the home is lost: database, keys, objects, the node's chain
    again = run(env, "restore", str(backup), "--governor", _signed_by(out), check=False)
    assert again.returncode == 0, again.stderr
    assert "the same chain" in again.stdout and "RESET" not in again.stdout
    assert (Path(env["QIYEMA_HOME"]) / "crypto-profile").read_text() == profile + "\n"
    refused = run(env, "restore", str(backup), "--governor", _signed_by(out), check=False)  # a home that holds a service is not overwritten
    assert refused.returncode == 1 and "already holds a service" in refused.stderr

    server = start_server({**env, "QIYEMA_ANCHOR_MAX_WAIT": "0.5"}, port, log=tmp_path / "serve-2.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert {i: _verify_material(http, contents[i], bundles[i]) for i in anchored} == before
            assert _verify_codes(http, companies) == codes_before
            for i in anchored:
                assert http.get(f"/api/v1/materials/{i}/content", headers=enterprise).content == contents[i]
            # What waited for its batch at the backup is anchored now, and its proof verifies.
            for m in (newer, waiting):
                _wait_for(lambda: http.get(f"/api/v1/materials/{m['id']}", headers=enterprise).json()["state"]
                          == "anchored")
                bundle = http.get(f"/api/v1/materials/{m['id']}/proof", headers=enterprise).json()
                content = http.get(f"/api/v1/materials/{m['id']}/content", headers=enterprise).content
                assert _verify_material(http, content, bundle)[0] == "VALID"
            states = {m["id"]: m["state"] for m in http.get("/api/v1/materials", headers=enterprise).json()["items"]}
            assert states == {i: "anchored" if s == "confirmed" else s for i, s in states_before.items()}
            assert http.get(f"/api/v1/materials/{uploaded['id']}", headers=enterprise).json()["state"] == "uploaded"
    finally:
        stop_server(server)


def test_a_restore_onto_a_reset_chain_re_anchors_and_says_so(drill_home, tmp_path):
    home = drill_home
    chain_port = free_port()
    node = AnvilNode(tmp_path / "chain", port=chain_port)
    node.start()
    env = {**home, "QIYEMA_CHAIN_RPC_URL": node.url}
    try:
        companies = _companies(run(env, "demo").stdout)
        enterprise = {"Authorization": "Bearer " + run(env, "keys", "create", "--org", "甲", "--role", "enterprise",
                                                       "--scope", companies[0][0]).stdout.strip()}
        port = free_port()
        server = start_server(env, port, log=tmp_path / "serve-1.log")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                codes_before = _verify_codes(http, companies)
                ids = [m["id"] for m in http.get("/api/v1/materials", headers=enterprise).json()["items"]]
        finally:
            stop_server(server)
        backup = tmp_path / "backup"
        made = run(env, "backup", str(backup)).stdout
        assert "node state: no (external chain)" in made

        # The chain is reset (a new network, nothing on it) and the home is lost.
        node.stop()
        shutil.rmtree(tmp_path / "chain")
        time.sleep(1.1)  # a genesis of another second: another chain
        node.start()
        shutil.rmtree(env["QIYEMA_HOME"])
        out = run(env, "restore", str(backup), "--governor", _signed_by(made)).stdout
        assert "RESET" in out
        assert re.search(r"queued again: 6 enterprises, 1 static-code keys, \d+ records, 1 anchor batches", out), out
        assert "re-anchored" in out

        server = start_server(env, port, log=tmp_path / "serve-2.log")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                assert _verify_codes(http, companies) == codes_before  # the revoked permit still shows
                for i in ids:
                    bundle = http.get(f"/api/v1/materials/{i}/proof", headers=enterprise).json()
                    assert bundle["anchor"]["contract"].lower() == json.loads(
                        (tmp_path / "home" / "deployments" / "31337.json").read_text())["address"].lower()
                    content = http.get(f"/api/v1/materials/{i}/content", headers=enterprise).content
                    assert _verify_material(http, content, bundle)[0] == "VALID"
        finally:
            stop_server(server)
    finally:
        node.stop()


def _signed_by(backup_output: str) -> str:
    """The governor address `qiyema backup` says signed it (the operator notes it down)."""
    found = re.search(r"restore with --governor (0x[0-9a-fA-F]{40})", backup_output)
    assert found, backup_output
    return found.group(1)


def test_bad_input_to_backup_and_restore_is_a_message_and_an_exit_code(drill_home, tmp_path):
    home = drill_home
    empty = run(home, "backup", str(tmp_path / "nothing"), check=False)
    assert empty.returncode == 1 and "nothing to back up" in empty.stderr
    run(home, "init")
    backup = tmp_path / "backup"
    governor = _signed_by(run(home, "backup", str(backup)).stdout)
    again = run(home, "backup", str(backup), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr

    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    key = damaged / "home" / "keys" / "notary.json"
    key.chmod(0o600)
    key.write_text(key.read_text().replace('"ciphertext": "', '"ciphertext": "0', 1))
    target = {**home, "QIYEMA_HOME": str(tmp_path / "other-home"), "QIYEMA_NODE_PORT": str(free_port())}
    unpinned = run(target, "restore", str(damaged), check=False)  # whose signature? never read from the backup
    assert unpinned.returncode == 2 and "--governor" in unpinned.stderr
    refused = run(target, "restore", str(damaged), "--governor", governor, check=False)
    assert refused.returncode == 1 and "home/keys/notary.json does not match the manifest" in refused.stderr
    assert not (tmp_path / "other-home" / "keys").exists()  # nothing was written
    missing = run(target, "restore", str(tmp_path / "no-such-backup"), "--governor", governor, check=False)
    assert missing.returncode == 1 and "is not a backup" in missing.stderr
