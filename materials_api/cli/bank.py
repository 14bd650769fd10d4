"""`qiyema material`: independent verification of a material against its proof bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from materials_api.cli.common import fail, load_trust, print_verdict, settings, trust_option


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
@trust_option
def material_verify(file: Path, proof_file: Path, rpc: str | None, as_json: bool, trust_list_file: Path | None,
                    trusted_governor: str | None) -> None:
    """Check FILE against its proof bundle straight from the chain, without the service or its
    database, accepting only a deployment on the trust list. Prints each check; exit 0 only when
    the verdict is VALID."""
    from chain.client import ChainClient
    from chain.material_verify import sha256_of, verify_material
    from chain.proof import ProofBundle

    if not file.is_file():
        fail(f"{file}: no such file", 2)
    if not proof_file.is_file():
        fail(f"{proof_file}: no such file", 2)
    trust = load_trust(trust_list_file, trusted_governor)
    try:
        bundle = ProofBundle.from_json(json.loads(proof_file.read_text(encoding="utf-8")))
    except ValueError as exc:  # ProofError and JSON errors
        fail(f"{proof_file}: {getattr(exc, 'message', exc)}", 2)
    s = settings()
    url = rpc or s.chain_rpc_url or f"http://127.0.0.1:{s.node_port}"
    client = ChainClient.from_url(url, retries=1, request_timeout=s.chain_request_timeout)
    verdict = verify_material(bundle, content_sha256=sha256_of(file), client=client, trust=trust,
                              max_head_age=s.chain_max_head_age)
    print_verdict(verdict, as_json)


def _batch_items(path: Path) -> list[tuple[Path, Path]]:
    """(file, proof bundle) pairs: a directory's `*.proof.json` files, each beside its file
    (`X.proof.json` proves `X`), or a manifest listing them (CSV with columns file,proof, or JSON
    Lines with those keys; paths relative to the manifest)."""
    import csv

    if path.is_dir():
        proofs = sorted(path.rglob("*.proof.json"))
        return [(p.with_name(p.name.removesuffix(".proof.json")), p) for p in proofs]
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read the manifest ({exc})", 2)
    rows: list[dict] = []
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    fail(f"{path}:{n}: not a JSON line", 2)
    items = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("file") or not row.get("proof"):
            fail(f"{path}: entry {n} needs a file and a proof", 2)
        items.append((base / row["file"], base / row["proof"]))
    return items


@material.command("verify-batch")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--rpc", default=None, help="a chain node's JSON-RPC URL (default: QIYEMA_CHAIN_RPC_URL or the "
                                          "local node)")
@click.option("--json", "as_json", is_flag=True, help="one JSON verdict per line (with its file) instead of text")
@trust_option
def material_verify_batch(source: Path, rpc: str | None, as_json: bool, trust_list_file: Path | None,
                          trusted_governor: str | None) -> None:
    """Verify many files against their proof bundles in one go, straight from the chain (one
    chain read per 500 leaves). SOURCE is a directory (every `X.proof.json` with its file `X`
    beside it) or a manifest (CSV `file,proof` or JSON Lines). Prints one verdict per item and a
    summary; exit 0 only when every item is VALID, 1 otherwise, 2 on unreadable input."""
    import sys

    from chain.client import ChainClient
    from chain.material_verify import sha256_of, verify_materials
    from chain.proof import ProofBundle

    trust = load_trust(trust_list_file, trusted_governor)
    pairs = _batch_items(source)
    if not pairs:
        fail(f"{source}: no proof bundles found (a directory needs X.proof.json beside each file X)", 2)
    prepared, problems = [], {}
    with click.progressbar(pairs, label="reading", file=sys.stderr) as bar:
        for i, (file, proof) in enumerate(bar):
            try:
                bundle = ProofBundle.from_json(json.loads(proof.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                problems[i] = f"proof bundle unreadable: {getattr(exc, 'message', exc)}"
                continue
            if not file.is_file():
                problems[i] = "file missing"
                continue
            prepared.append((i, bundle, sha256_of(file)))
    s = settings()
    url = rpc or s.chain_rpc_url or f"http://127.0.0.1:{s.node_port}"
    client = ChainClient.from_url(url, retries=1, request_timeout=s.chain_request_timeout)
    with click.progressbar(length=len(prepared), label="verifying", file=sys.stderr) as bar:
        verdicts = verify_materials([(b, d) for _, b, d in prepared], client=client, trust=trust,
                                    max_head_age=s.chain_max_head_age, on_progress=bar.update)
    by_index = {i: v for (i, _, _), v in zip(prepared, verdicts)}
    counts: dict[str, int] = {}
    for i, (file, _) in enumerate(pairs):
        verdict = by_index.get(i)
        status = verdict.status.value if verdict else "UNREADABLE"
        counts[status] = counts.get(status, 0) + 1
        if as_json:
            out = verdict.as_dict() if verdict else {"status": status, "problem": problems[i]}
            click.echo(json.dumps({"file": str(file), **out}, ensure_ascii=False))
        else:
            why = problems.get(i) or ", ".join(f"{c.name}:{c.reason}" for c in verdict.checks
                                               if c.status.value not in ("VALID", "SKIPPED"))
            click.echo(f"{status:<10} {file}{'  ' + why if why else ''}")
    click.echo(f"{len(pairs)} verified: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), err=True)
    sys.exit(0 if counts.get("VALID", 0) == len(pairs) else 1)
