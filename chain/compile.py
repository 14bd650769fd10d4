"""Compile the Solidity contracts with py-solc-x through the project's solcjs shim.

The compiler version and settings live in contracts/solc-settings.json, shared with Hardhat, and
source units are named as Hardhat names them ("contracts/X.sol", "@openzeppelin/..."), so both
tools produce byte-identical bytecode. Results are cached by the hash of the exact input.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import solcx
import solcx.wrapper

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = ROOT / "contracts"
NODE_MODULES = ROOT / "node_modules"
SOLC_SHIM = ROOT / "tools" / "solc"
SETTINGS_FILE = CONTRACTS_DIR / "solc-settings.json"
CACHE_DIR = Path(os.environ.get("QIYEMA_BUILD_CACHE", ROOT / ".cache" / "solc"))


@dataclass(frozen=True)
class Artifact:
    name: str
    source: str
    abi: list
    bytecode: str  # creation code, 0x-prefixed
    runtime_bytecode: str  # deployed code, 0x-prefixed


def settings() -> dict:
    return json.loads(SETTINGS_FILE.read_text())


def standard_input() -> dict:
    conf = settings()
    sources = {}
    for path in sorted(CONTRACTS_DIR.rglob("*.sol")):
        unit = path.relative_to(ROOT).as_posix()
        sources[unit] = {"content": path.read_text()}
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            **conf["settings"],
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


@functools.cache  # once per process: reading and hashing the sources costs milliseconds per call
def compile_all() -> dict[str, Artifact]:
    """Every contract in contracts/, by name. Raises RuntimeError with the compiler's messages."""
    return _compile_cached(json.dumps(standard_input(), sort_keys=True))


@lru_cache(maxsize=4)
def _compile_cached(input_json: str) -> dict[str, Artifact]:
    version = settings()["version"]
    key = hashlib.sha256(f"{version}\n{input_json}".encode()).hexdigest()
    cached = CACHE_DIR / f"{key}.json"
    if cached.exists():
        output = json.loads(cached.read_text())
    else:
        if not NODE_MODULES.joinpath("solc").exists():
            raise RuntimeError("the npm solc package is missing: run `npm ci` in the project root")
        found = str(solcx.wrapper.get_solc_version(SOLC_SHIM))
        if found != version:
            raise RuntimeError(f"solc shim reports {found}, contracts/solc-settings.json pins {version}")
        output = solcx.compile_standard(
            json.loads(input_json),
            solc_binary=SOLC_SHIM,
            base_path=ROOT,
            allow_paths=[ROOT, NODE_MODULES],
        )
        errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
        if errors:
            raise RuntimeError("\n".join(e["formattedMessage"] for e in errors))
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(output))
        tmp.replace(cached)
    artifacts: dict[str, Artifact] = {}
    for source, contracts in output["contracts"].items():
        for name, c in contracts.items():
            if not source.startswith("contracts/"):
                continue
            artifacts[name] = Artifact(
                name=name,
                source=source,
                abi=c["abi"],
                bytecode="0x" + c["evm"]["bytecode"]["object"],
                runtime_bytecode="0x" + c["evm"]["deployedBytecode"]["object"],
            )
    return artifacts


def artifact(name: str = "Qiyema") -> Artifact:
    return compile_all()[name]
