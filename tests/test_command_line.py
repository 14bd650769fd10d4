"""The operator's commands that change keys, deployments and people, run as an operator runs
them (separate processes on a home with its managed anvil node), each checked by what a user of
the result sees: a printed code that still scans VALID, a trust list that names both
deployments, a person who can sign in, materials witnessed again under a new key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from chain.client import ChainClient
from chain.deploy import load_record
from chain.node import AnvilNode
from codes.scan import scan
from tests.conftest import free_port
from tests.processes import CLI, run, start_server, stop_server
from tests.test_e2e_anvil import home  # noqa: F401 - the fixture: a fresh home with its own node port

pytestmark = pytest.mark.anvil


def test_a_printed_code_scans_valid_across_a_key_rotation_and_a_contract_upgrade(home, tmp_path):  # noqa: F811
    uscc = re.findall(r" (9\w{17}): HTTP://", run(home, "demo").stdout)[0]
    printed = tmp_path / "printed.png"
    run(home, "code", "render", uscc, "-o", str(printed))

    rotated = run(home, "code", "rotate-key").stdout
    assert re.search(r"new static-code key 2 at 0x[0-9a-fA-F]{40}; codes printed before stay valid", rotated), rotated
    scanned = run(home, "code", "scan", str(printed)).stdout
    assert "verdict: VALID" in scanned and "key_retired" in scanned  # valid, with the rotation said
    assert "nothing deployed" in run(home, "chain", "upgrade", "--yes").stdout  # the build runs already

    # The chain now runs other code than this build (as after a contract change): refused until
    # the operator upgrades, which deploys beside the old contract and appends to the trust list.
    node = AnvilNode(Path(home["QIYEMA_HOME"]) / "node", port=int(home["QIYEMA_NODE_PORT"]))
    node.start()
    client = ChainClient.from_url(node.url)
    old = load_record(Path(home["QIYEMA_HOME"]) / "deployments", client.chain_id).address
    client.request("anvil_setCode", [old, client.request("eth_getCode", [old, "latest"]) + "00"])
    differs = run(home, "chain", "status", check=False)
    assert differs.returncode == 1 and "matches" not in differs.stdout
    upgraded = run(home, "chain", "upgrade", "--yes").stdout
    assert "deployed: chain id 31337" in upgraded and "2 deployment(s)" in upgraded, upgraded
    trust = json.loads(run(home, "chain", "trust-list").stdout)
    assert [d["address"].lower() for d in trust["deployments"]][0] == old.lower() and len(trust["deployments"]) == 2
    out = tmp_path / "trust-list.json"
    written = run(home, "chain", "trust-list", "-o", str(out))
    assert f"wrote {out}: 2 deployment(s)" in written.stdout and "trusted governor: 0x" in written.stdout
    assert json.loads(out.read_text()) == trust
    status = run(home, "chain", "status").stdout
    assert "matches the local build" in status and "trust list:     2 deployment(s)" in status

    # The service registers the enterprises on the new deployment; the printed code scans VALID.
    code = scan(printed.read_bytes())[0]
    port = free_port()
    server = start_server(home, port, log=tmp_path / "serve.log")
    try:
        deadline = time.monotonic() + 120
        while True:
            verdict = httpx.post(f"http://127.0.0.1:{port}/api/v1/verify/code", json={"code": code}, timeout=30).json()
            if verdict["status"] == "VALID" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert verdict["status"] == "VALID", verdict
    finally:
        stop_server(server)


def test_a_person_created_from_the_command_line_signs_in(home, tmp_path):  # noqa: F811
    run(home, "init")

    def create(username: str, password: str, *extra: str):
        return subprocess.run(CLI + ["users", "create", "--org", "杨浦区行政服务中心", "--username", username,
                                     "--name", "李四", "--role", "clerk", "--password-stdin", *extra],
                              env=home, input=password + "\n", capture_output=True, text=True, timeout=120)

    made = create("clerk.li", "a long enough passphrase 2026")
    assert made.returncode == 0 and "user clerk.li (clerk) created in 杨浦区行政服务中心" in made.stdout, made.stderr
    again = create("clerk.li", "another passphrase 2026")
    assert again.returncode == 2 and "clerk.li" in again.stderr and "Traceback" not in again.stderr
    port = free_port()
    server = start_server(home, port, log=tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            wrong = http.post("/login", data={"username": "clerk.li", "password": "another passphrase 2026"})
            assert "qiyema_session" not in wrong.cookies
            r = http.post("/login", data={"username": "clerk.li", "password": "a long enough passphrase 2026"})
            assert r.status_code == 303 and "qiyema_session" in r.cookies, r.text
    finally:
        stop_server(server)


def test_materials_of_a_compromised_notary_are_witnessed_again_under_the_new_one(home):  # noqa: F811
    run(home, "demo")  # three materials anchored by the notary
    declared = run(home, "keys", "compromise", "--role", "notary", "--from-block", "all", "--yes").stdout
    assert "it invalidates 3 material(s) in 1 batch(es)" in declared, declared
    command = re.search(r"qiyema (keys rewitness .+)$", declared, re.M).group(1).split()
    again = run(home, *command).stdout
    assert "3 material(s) queued for new batches under the current notary" in again
    listed = run(home, "keys", "list").stdout
    address = re.search(r"^notary\s+2\s+(0x[0-9a-fA-F]{40})\s+active", listed, re.M)
    assert address, listed
    refused = run(home, "keys", "rewitness", "--role", "notary", "--address", address.group(1),
                  "--from-block", "all", check=False)
    assert refused.returncode == 1 and "not_compromised" in refused.stderr


def test_imports_read_what_excel_saves_in_china_and_exit_non_zero_when_rows_are_rejected(home, tmp_path):  # noqa: F811
    run(home, "init")
    path = tmp_path / "名册.csv"
    path.write_bytes("统一社会信用代码,企业名称\r\n91350100M000100Y43,福建示例科技有限公司\r\n91350100M000100Y44,校验码错\r\n"
                     .encode("gb18030"))
    done = run(home, "enterprises", "import", str(path), check=False)
    assert done.returncode == 1 and "registered 1, rejected 1" in done.stdout, done.stderr
    assert "read as GB18030" in done.stderr and "Traceback" not in done.stderr
    neither = tmp_path / "garbled.csv"
    neither.write_bytes(b"uscc,name\n\xff\xfe\xff\n")
    refused = run(home, "enterprises", "import", str(neither), check=False)
    assert refused.returncode == 2 and "neither UTF-8 nor GB18030" in refused.stderr and "iconv" in refused.stderr
    issuer = run(home, "keys", "create", "--org", "市场监管局食品科", "--role", "issuer", "--scope", "permit.food").stdout.strip()
    records = tmp_path / "许可.csv"
    records.write_bytes("uscc,kind,number,source_id,source_version\r\n"
                        "91350100M000100Y43,food_business,JY001,JY-1,1\r\n"
                        "91350100M000100Y43,no_such_kind,JY002,JY-2,1\r\n".encode("gb18030"))
    imported = run({**home, "QIYEMA_API_KEY": issuer}, "records", "import", str(records), check=False)
    assert imported.returncode == 1 and "applied 1, unchanged 0, rejected 1" in imported.stdout, imported.stderr
    # Two bars: written ahead, then witnessed on chain (it ends at 100 %, not at the first bar's end).
    assert "written ahead: 100%" in imported.stderr and "witnessed on chain: 100%" in imported.stderr, imported.stderr
    rejects = (tmp_path / "许可.csv.rejected.csv").read_text(encoding="utf-8")
    assert "unknown_record_kind" in rejects and "没有这种记录类型" in rejects  # in Chinese too


def test_an_import_stopped_with_ctrl_c_says_how_to_resume_and_resumes(home, tmp_path):  # noqa: F811
    import random
    import signal
    import sqlite3

    from codes.uscc import generate

    run(home, "init")
    rng = random.Random(29)
    # Enough rows that the import is still running when its first batch is seen (a fast machine
    # wrote 4,000 ahead and registered them all in a second, before the signal was sent).
    codes = list(dict.fromkeys(generate(rng) for _ in range(12000)))
    path = tmp_path / "名册.csv"
    path.write_text("uscc,name\n" + "".join(f"{c},企业{i}\n" for i, c in enumerate(codes)), encoding="utf-8")
    # As from a terminal: Ctrl-C's signal at its default. A shell running the suite in the
    # background (`cmd &` without job control) starts it with SIGINT ignored, and a process that
    # starts so keeps ignoring it, as Unix intends: that is how this test failed twice.
    proc = subprocess.Popen(CLI + ["enterprises", "import", str(path), "--batch-size", "200"], env=home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = Path(home["QIYEMA_HOME"]) / "qiyema.db"
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None and stored < 200:
        try:
            with sqlite3.connect(db) as c:
                stored = c.execute("select count(*) from enterprises").fetchone()[0]
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the import finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "再次运行同一命令即可继续" in err and "Traceback" not in err
    again = run(home, "enterprises", "import", str(path), "--batch-size", "200")
    assert f"registered {len(codes)}, rejected 0 (resumed)" in again.stdout


def test_a_home_set_up_with_the_gm_profile_keeps_it_and_rewraps_its_data_keys(home, tmp_path):  # noqa: F811
    """`init --profile gm` fixes the deployment's cryptography; `chain status` shows it; a start
    told the other profile is refused (never mixed); `keys rewrap-objects` moves every data key
    under a new wrapping key, and the object still downloads as it was."""
    out = run(home, "init", "--profile", "gm").stdout
    assert "profile:   gm (at rest SM4-GCM; codes SM2 with SM3; proofs sm3)" in out
    assert (Path(home["QIYEMA_HOME"]) / "crypto-profile").read_text() == "gm\n"
    assert "crypto profile: gm (at rest SM4-GCM" in run(home, "chain", "status").stdout
    mixed = run({**home, "QIYEMA_CRYPTO_PROFILE": "intl"}, "init", check=False)
    assert mixed.returncode == 2 and "never mixes the two" in mixed.stderr and "Traceback" not in mixed.stderr
    port = free_port()
    server = start_server(home, port)
    try:
        governor = (Path(home["QIYEMA_HOME"]) / "governor.key").read_text().strip()
        registrar = run({**home, "QIYEMA_API_KEY": governor}, "keys", "create", "--org", "登记机关",
                        "--role", "registrar").stdout.strip()
        company = run({**home, "QIYEMA_API_KEY": governor}, "keys", "create", "--org", "示例", "--role",
                      "enterprise", "--scope", "91350100M000100Y43").stdout.strip()
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/api/v1/enterprises", headers={"Authorization": f"Bearer {registrar}"},
                          json={"uscc": "91350100M000100Y43", "name": "示例"}).status_code == 201
        m = httpx.post(f"{base}/api/v1/materials", headers={"Authorization": f"Bearer {company}"},
                       files={"file": ("合同.pdf", b"%PDF-1.7\n gm profile document\n%%EOF\n")}).json()
    finally:
        stop_server(server)
    stored = next(p for p in (Path(home["QIYEMA_HOME"]) / "objects").rglob(m["sha256"]))
    assert b"gm profile document" not in stored.read_bytes()
    moved = run({**home, "QIYEMA_STORAGE_WRAPPING_KEY": "object-wrap-2"}, "keys", "rewrap-objects")
    assert "1 data key(s) re-wrapped under object-wrap-2" in moved.stdout
    server = start_server({**home, "QIYEMA_STORAGE_WRAPPING_KEY": "object-wrap-2"}, port)
    try:
        got = httpx.get(f"http://127.0.0.1:{port}/api/v1/materials/{m['id']}/content",
                        headers={"Authorization": f"Bearer {company}"})
        assert got.content == b"%PDF-1.7\n gm profile document\n%%EOF\n"
    finally:
        stop_server(server)
    off = run({**home, "QIYEMA_ENCRYPT_AT_REST": "false"}, "keys", "rewrap-objects", check=False)
    assert off.returncode == 1 and "encryption at rest is off" in off.stderr


@pytest.mark.parametrize("args, code, english", [
    (["--no-such-option"], 2, "No such option"),
    (["uscc", "check", "ABC"], 1, "a USCC has 18 characters"),
    (["keys", "compromise", "--role", "notary", "--from-block", "soon", "--yes"], 2, "--from-block takes a block number"),
    (["code", "render", "91350100M000100Y43", "-o", "code.gif"], 2, "must end in .png or .svg"),
    (["material", "verify", "no-such-file.pdf", "--proof", "no-such-file.proof.json"], 2, "no such file"),
    (["restore", "/nonexistent-backup"], 2, "--governor"),
])
def test_bad_input_exits_non_zero_with_its_reason_in_english_and_chinese(args, code, english, tmp_path):
    """Every refusal of the command line: a non-zero exit, the reason (English, with its reason
    code where it has one) and a Chinese line; never a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYEMA_")}
    r = subprocess.run(CLI + args, env={**env, "QIYEMA_HOME": str(tmp_path / "home")}, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert english in r.stderr and re.search(r"[\u4e00-\u9fff]", r.stderr), r.stderr
    assert "Traceback" not in r.stderr
