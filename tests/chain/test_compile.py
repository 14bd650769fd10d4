import json
import subprocess

from chain.compile import ROOT, SOLC_SHIM, artifact, settings


def test_shim_answers_version_like_solc():
    out = subprocess.run([str(SOLC_SHIM), "--version"], capture_output=True, text=True, check=True).stdout
    assert f"Version: {settings()['version']}+commit." in out


def test_shim_prints_clean_json_for_standard_json():
    request = {"language": "Solidity",
               "sources": {"A.sol": {"content": "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0; contract A {}"}},
               "settings": {"outputSelection": {"*": {"*": ["abi"]}}}}
    out = subprocess.run([str(SOLC_SHIM), "--standard-json"], input=json.dumps(request), capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)["contracts"]["A.sol"]["A"]["abi"] == []


def test_shim_refuses_what_it_does_not_do():
    r = subprocess.run([str(SOLC_SHIM), "--bin", "x.sol"], capture_output=True, text=True)
    assert r.returncode == 2 and "only --version and --standard-json" in r.stderr


def test_py_solc_x_bytecode_equals_hardhat():
    subprocess.run(["npx", "hardhat", "compile", "--quiet"], cwd=ROOT, check=True, capture_output=True)
    hardhat = json.loads((ROOT / ".cache/hardhat-artifacts/contracts/Qiyema.sol/Qiyema.json").read_text())
    ours = artifact("Qiyema")
    assert ours.bytecode == hardhat["bytecode"]
    assert ours.runtime_bytecode == hardhat["deployedBytecode"]
    assert ours.abi == hardhat["abi"]


def _opcodes(code_hex: str) -> list[int]:
    """The instructions of EVM bytecode, PUSH data skipped (the metadata trailer after INVALID
    0xfe is read as instructions too, which can only add false alarms, never hide a PUSH0)."""
    code = bytes.fromhex(code_hex.removeprefix("0x"))
    out, i = [], 0
    while i < len(code):
        op = code[i]
        out.append(op)
        i += 1 + (op - 0x5f if 0x60 <= op <= 0x7f else 0)
    return out


def test_bytecode_targets_paris():
    # PUSH0 (0x5f) came with Shanghai; Clique-era geth and most permissioned EVMs lack it. The
    # setting and, what counts, the bytes: no PUSH0 instruction in any deployed or creation code.
    assert settings()["settings"]["evmVersion"] == "paris"
    from chain.compile import compile_all

    checked = 0
    for name, compiled in compile_all().items():
        runtime = _without_metadata(compiled.runtime_bytecode)
        if not runtime:
            continue  # an interface
        creation = compiled.bytecode.removeprefix("0x")
        constructor = creation[: creation.find(runtime)] if runtime in creation else creation
        for code in (runtime, constructor):
            assert 0x5f not in _opcodes(code), f"{name} holds PUSH0"
        checked += 1
    assert checked >= 1 and _opcodes("5f00") == [0x5f, 0x00]  # Qiyema (the one deployed); the check sees a PUSH0


def _without_metadata(code_hex: str) -> str:
    """The code without solc's CBOR metadata trailer (its last two bytes say its length)."""
    code = bytes.fromhex(code_hex.removeprefix("0x"))
    if len(code) >= 2:
        length = int.from_bytes(code[-2:], "big")
        if length + 2 <= len(code):
            code = code[: -(length + 2)]
    return code.hex()
