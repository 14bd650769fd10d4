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


def test_bytecode_targets_paris():
    # PUSH0 (0x5f) came with Shanghai; Clique-era geth and most permissioned EVMs lack it.
    assert settings()["settings"]["evmVersion"] == "paris"
