"""Idempotent deployment of the Qiyema contract, recorded per chain id.

The record (address, block, transaction, runtime-code hash, genesis hash) lives in
`<dir>/<chain_id>.json`. Deploying again reuses it while the chain still holds that exact code;
a chain that was reset (no code at the address) gets a fresh deployment, and the caller
re-registers from its database, which is the record (the chain is the witness). The genesis hash
is kept for operators only: anvil regenerates its genesis block when it reloads a state dump.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_utils import keccak

from .durable import write_atomic
from .client import ChainClient
from .compile import artifact
from .errors import ChainError
from .signers import Signer


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    contract: str
    address: str
    tx_hash: str
    block_number: int
    code_hash: str
    genesis_hash: str
    deployed_at: float


@dataclass(frozen=True)
class CodeStatus:
    """How the code on chain compares with the local build."""

    deployed: bool  # there is a record and code at its address
    matches_build: bool  # the on-chain runtime code equals the local build's, byte for byte
    onchain_code_hash: str | None
    local_code_hash: str
    reason: str


def record_path(directory: Path, chain_id: int) -> Path:
    return Path(directory) / f"{chain_id}.json"


def load_record(directory: Path, chain_id: int) -> Deployment | None:
    path = record_path(directory, chain_id)
    if not path.exists():
        return None
    return Deployment(**json.loads(path.read_text()))


def _save_record(directory: Path, deployment: Deployment) -> None:
    path = record_path(directory, deployment.chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(deployment), indent=2).encode())


def code_status(client: ChainClient, directory: Path) -> CodeStatus:
    local_hash = "0x" + keccak(hexstr=artifact().runtime_bytecode).hex()
    record = load_record(directory, client.chain_id)
    if record is None:
        return CodeStatus(False, False, None, local_hash, "no deployment recorded for this chain id")
    code = client.code_at(record.address)
    if not code:
        return CodeStatus(False, False, None, local_hash, f"no code at {record.address}: the chain was reset")
    onchain_hash = "0x" + keccak(code).hex()
    if onchain_hash != local_hash:
        return CodeStatus(True, False, onchain_hash, local_hash, "on-chain code differs from the local build")
    return CodeStatus(True, True, onchain_hash, local_hash, "on-chain code matches the local build")


class CodeDiffers(ChainError):
    """The recorded deployment is live but its code is not this build's: an upgrade is an
    operator's decision (`qiyema chain upgrade`), never a side effect of starting."""


def deploy(client: ChainClient, governor: Signer, directory: Path, *,
           grants: dict[str, list[str]] | None = None, upgrade: bool = False) -> tuple[Deployment, bool]:
    """Deploy Qiyema unless the recorded deployment is live with the same code. A live deployment
    of other code raises `CodeDiffers` unless `upgrade` (the new deployment is then recorded; the
    caller appends it to the trust list, where the old one stays).

    `grants` maps role constant names ("REGISTRAR_ROLE", ...) to accounts; each missing grant is
    made, present ones are left alone. Returns the deployment and whether it is new.
    """
    status = code_status(client, directory)
    created = False
    if status.deployed and status.matches_build:
        record = load_record(directory, client.chain_id)
    elif status.deployed and not upgrade:
        old = load_record(directory, client.chain_id)
        raise CodeDiffers(f"the contract at {old.address} on chain {client.chain_id} runs other code "
                          f"({status.onchain_code_hash}) than this build ({status.local_code_hash}); nothing was "
                          "deployed. Run `qiyema chain upgrade` to deploy this build beside it (appended to the "
                          "trust list), or run the build that matches")
    else:
        art = artifact()
        factory = client.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        receipt = client.transact(governor, tx={"data": factory.constructor(governor.address).data_in_transaction})
        address = client.w3.eth.get_transaction_receipt(receipt.tx_hash)["contractAddress"]
        record = Deployment(
            chain_id=client.chain_id,
            contract=art.name,
            address=address,
            tx_hash=receipt.tx_hash,
            block_number=receipt.block_number,
            code_hash=status.local_code_hash,
            genesis_hash=client.genesis_hash(),
            deployed_at=time.time(),
        )
        _save_record(directory, record)
        created = True
    contract = client.contract(record.address, artifact().abi)
    for role_name, accounts in (grants or {}).items():
        role = client.call(getattr(contract.functions, role_name)())
        for account in accounts:
            if not client.call(contract.functions.hasRole(role, account)):
                client.transact(governor, contract.functions.grantRole(role, account))
    return record, created
