"""`qiyema material`: independent verification of a material against its proof bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from materials_api.cli.common import fail, print_verdict, settings


@click.group()
def material() -> None:
    """Materials: independent verification against a proof bundle."""


@material.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--proof", "proof_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the material's proof bundle (JSON)")
@click.option("--rpc", default=None, help="a chain node's JSON-RPC URL (default: QIYEMA_CHAIN_RPC_URL or the "
                                          "local node)")
@click.option("--json", "as_json", is_flag=True, help="print the verdict as JSON")
def material_verify(file: Path, proof_file: Path, rpc: str | None, as_json: bool) -> None:
    """Check FILE against its proof bundle straight from the chain, without the service or its
    database. Prints each check; exit 0 only when the verdict is VALID."""
    from chain.client import ChainClient
    from chain.material_verify import sha256_of, verify_material
    from chain.proof import ProofBundle

    if not file.is_file():
        fail(f"{file}: no such file", 2)
    if not proof_file.is_file():
        fail(f"{proof_file}: no such file", 2)
    try:
        bundle = ProofBundle.from_json(json.loads(proof_file.read_text(encoding="utf-8")))
    except ValueError as exc:  # ProofError and JSON errors
        fail(f"{proof_file}: {getattr(exc, 'message', exc)}", 2)
    s = settings()
    url = rpc or s.chain_rpc_url or f"http://127.0.0.1:{s.node_port}"
    client = ChainClient.from_url(url, retries=1, request_timeout=s.chain_request_timeout)
    verdict = verify_material(bundle, content_sha256=sha256_of(file), client=client)
    print_verdict(verdict, as_json)
