"""`qiyema keys list|rotate|compromise|migrate|rewrap-objects`: the service's own signing keys (its chain
accounts), beside `qiyema keys create` (organisations' API keys, cli/people.py) in one group."""

from __future__ import annotations

import os

import click

from materials_api.cli.common import fail, opened, settings
from materials_api.cli.people import keys

_ROLE_CHOICE = click.Choice(["notary", "registrar", "issuer"])


def _purpose_and_roles(services, role: str, organisation: int | None) -> tuple[str, list[str]]:
    from materials_api.platform.key_rotation import ROLES

    if role == "issuer":
        if organisation is None:
            fail("--role issuer needs --organisation ID (the issuing organisation)", 2)
        roles = services.records.issuer_roles(organisation)
        if not roles:
            fail(f"organisation {organisation} has no issuer account on chain yet [unknown_key]", 1)
        return f"org-{organisation}", roles
    if organisation is not None:
        fail("--organisation goes with --role issuer only", 2)
    return role, ROLES[role]


@keys.command("list")
def keys_list() -> None:
    """Every generation of every service account: purpose, generation, address, status."""
    with opened() as (runtime, _):
        for purpose in ("governor", "registrar", "notary"):
            runtime.chain.keys.account(purpose)
        rows = runtime.chain.keys.rows()
        click.echo(f"custody: {runtime.chain.keys.store.backend}")
        for r in rows:
            extra = f" from block {r.compromised_from_block}" if r.status == "compromised" else ""
            click.echo(f"{r.purpose:<12} {r.generation:>3}  {r.address}  {r.status}{extra}")


@keys.command("rotate")
@click.option("--role", required=True, type=_ROLE_CHOICE)
@click.option("--organisation", type=int, help="with --role issuer: the issuing organisation's id")
def keys_rotate(role: str, organisation: int | None) -> None:
    """Routine rotation: a new key takes the account's roles, the old one is retired. Everything
    the old key wrote stays VALID (verdicts add the warning key_retired)."""
    from materials_api.platform.key_rotation import rotate

    with opened() as (runtime, services):
        purpose, roles = _purpose_and_roles(services, role, organisation)
        done = rotate(runtime.chain, purpose, roles)
    click.echo(f"{purpose}: {done.new_address} now holds {', '.join(roles)}; "
               f"{done.old_address or 'no earlier key'} retired (its earlier writes stay valid)")


@keys.command("compromise")
@click.option("--role", required=True, type=_ROLE_CHOICE)
@click.option("--organisation", type=int, help="with --role issuer: the issuing organisation's id")
@click.option("--address", help="the key's address (default: the active one)")
@click.option("--from-block", "from_block", required=True,
              help="the first block its writes are untrusted from, or 'all' for everything it ever wrote")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def keys_compromise(role: str, organisation: int | None, address: str | None, from_block: str, yes: bool) -> None:
    """Declare a key compromised: what it wrote from --from-block on verifies INVALID
    (key_compromised); before it VALID with a warning. An active key is replaced first."""
    from materials_api.platform.key_rotation import compromise

    if from_block == "all":
        block = 0
    elif from_block.isdigit():
        block = int(from_block)
    else:
        fail(f"--from-block takes a block number or 'all', not {from_block!r}", 2)
    with opened() as (runtime, services):
        purpose, roles = _purpose_and_roles(services, role, organisation)
        if not yes:
            click.confirm(f"every write of this {purpose} key from block {block} on will verify INVALID; go on?",
                          abort=True, err=True)
        marked, rotation = compromise(runtime.chain, purpose, roles, address, block)
        batches, materials, records = _written_by(services, purpose, marked, block)
    click.echo(f"{purpose}: {marked} declared compromised from block {block}"
               + (f"; {rotation.new_address} took its roles" if rotation else ""))
    click.echo(f"it invalidates {materials} material(s) in {batches} batch(es) and {records} record(s) it wrote "
               f"from block {block}; to witness them again under the current key:\n"
               f"  qiyema keys rewitness --role {role}"
               + (f" --organisation {organisation}" if organisation is not None else "")
               + f" --address {marked} --from-block {block}")


def _written_by(services, purpose: str, address: str, block: int) -> tuple[int, int, int]:
    """(batches, materials, records) the key at `address` wrote from `block` on."""
    if purpose == "notary":
        from materials_api.bank.rewitness import written_by

        batches, materials = written_by(services.materials, address, block)
        return len(batches), materials, 0
    if purpose.startswith("org-"):
        from materials_api.records.sealing import written_by

        batches = written_by(services.records.sessions, services.records.chain.ledger,
                             int(purpose.removeprefix("org-")), address, block)
        return len(batches), 0, sum(batches.values())
    return 0, 0, 0


@keys.command("rewitness")
@click.option("--role", required=True, type=click.Choice(["notary", "issuer"]))
@click.option("--organisation", type=int, help="with --role issuer: the issuing organisation's id")
@click.option("--address", required=True, help="the compromised key's address")
@click.option("--from-block", "from_block", required=True, help="as declared: a block number or 'all'")
def keys_rewitness(role: str, organisation: int | None, address: str, from_block: str) -> None:
    """After `keys compromise`: witness again, under the current key, what the compromised key
    wrote that the service still vouches for — materials whose bytes it holds unaltered (new
    batches, fresh salts), records from the database (sealed anew). Old bundles keep verifying
    INVALID key_compromised and name their replacement."""
    block = 0 if from_block == "all" else int(from_block) if from_block.isdigit() else None
    if block is None:
        fail(f"--from-block takes a block number or 'all', not {from_block!r}", 2)
    with opened() as (runtime, services):
        purpose, _ = _purpose_and_roles(services, role, organisation)
        term_ok = any(r.address.lower() == address.lower() and r.status == "compromised"
                      for r in runtime.chain.keys.rows(purpose))
        if not term_ok:
            fail(f"{address} is not a {purpose} key declared compromised: declare it first (`qiyema keys "
                 f"compromise`) [not_compromised]", 1)
        if role == "notary":
            from materials_api.bank.rewitness import rewitness

            again, left = rewitness(services.materials, address, block)
            click.echo(f"{again} material(s) queued for new batches under the current notary"
                       + (f"; {left} left out (their bytes are gone or altered)" if left else ""))
        else:
            from materials_api.records.sealing import rewitness

            batches, records = rewitness(services.records.sessions, runtime.chain.ledger, organisation, address, block,
                                         runtime.chain.tree_hash)
            click.echo(f"{records} record(s) in {batches} batch(es) sealed anew, issued by the organisation's current key")


@keys.command("migrate")
def keys_migrate() -> None:
    """Move plaintext key files (an older install's $QIYEMA_HOME/keys/*.eth) into the configured
    key store, check each reads back, then delete the plaintext. A plaintext *.key (the master
    secret enterprises' keys were once derived from) is no longer used: it is deleted."""
    from chain.keystore import KeyStoreError
    from chain.signers import LocalSigner
    from materials_api.platform.keys import open_keystore, plaintext_keys

    s = settings()
    files = plaintext_keys(s)
    if not files:
        click.echo(f"no plaintext key files in {s.keys_dir}: nothing to migrate")
        return
    try:
        store = open_keystore(s)
        for path in files:
            if path.suffix == ".key":
                # Enterprises' keys are made in the key store now; one derived from this secret
                # is replaced at its next use, so the secret protects nothing any more.
                _shred(path)
                click.echo(f"deleted {path.name}: a master secret no longer used (enterprise keys are "
                           f"wrapped in the {store.backend} now)")
                continue
            raw = bytes.fromhex(path.read_text().strip().removeprefix("0x"))
            address = LocalSigner(raw).address
            if store.create(path.stem, raw).address != address:
                fail(f"{path.name} did not read back from the key store: kept", 1)
            _shred(path)
            click.echo(f"moved {path.name} ({address}) into the {store.backend}")
    except KeyStoreError as exc:
        fail(f"{exc.message} [{exc.code}]", 1)
    except ValueError as exc:
        fail(f"a key file is not a hex key: {exc}", 1)
    click.echo(f"{len(files)} key file(s) done; no plaintext key is left in {s.keys_dir}")


@keys.command("rewrap-objects")
def keys_rewrap_objects() -> None:
    """Re-wrap every stored object's data key under the wrapping key QIYEMA_STORAGE_WRAPPING_KEY
    names (made in the key custody on first use); the objects themselves are not rewritten.
    Rotate by naming a new key (e.g. object-wrap-2) in the service's settings and running this;
    the old wrapping key may be deleted from the custody once this reports 0 left."""
    from chain.keystore import KeyStoreError
    from materials_api.platform.sealed_store import SealedStore

    with opened() as (runtime, _):
        store = runtime.storage
        if not isinstance(store, SealedStore):
            fail("encryption at rest is off (QIYEMA_ENCRYPT_AT_REST=false): no data keys to re-wrap", 1)
        try:
            done = store.rewrap()
        except KeyStoreError as exc:
            fail(f"{exc.message} [{exc.code}] (nothing half-done: each key is re-wrapped in its own step; "
                 "run again once the old wrapping key is reachable)", 2)
        click.echo(f"{done} data key(s) re-wrapped under {store.wrapping}; 0 left under another wrapping key")


def _shred(path) -> None:
    """Overwrite, then delete (a copy-on-write or journalled file system may keep old blocks:
    docs/operations.md says to migrate before the disk holds anything worth reading)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
