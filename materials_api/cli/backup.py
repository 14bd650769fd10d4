"""Backups: `backup DEST` copies a running service consistently, `restore SRC` brings one back
into an empty home and says what the chain it finds lacks (re-anchoring it when told to wait)."""

from __future__ import annotations

from pathlib import Path

import click

from materials_api.cli.common import fail, opened, settings


def _parts():
    from materials_api.platform.db import make_engine
    from materials_api.platform.storage import StorageError, open_store

    s = settings()
    try:
        store = open_store(s)
    except StorageError as exc:
        fail(f"storage: {exc}", 3)
    return s, make_engine(s.db_url), store


def _progress(what: str, n: int) -> None:
    click.echo(f"  … {n:,} {what}", err=True)


def _carry_out(step, s, engine, store, path: Path, **kwargs):
    """Run a backup or restore step: its refusals are a message and exit 1, a store that is
    down exit 3."""
    from materials_api.platform.backup import BackupError
    from materials_api.platform.storage import StorageError

    try:
        return step(s, engine, store, path, _progress, **kwargs)
    except BackupError as exc:
        fail(exc.message)
    except StorageError as exc:
        fail(f"storage: {exc}", 3)
    finally:
        engine.dispose()


def _sealing(s, engine, store):
    """The store as the service sees it: a sealed object is checked by opening it with its data
    key (the key store's); the backup itself copies the sealed bytes."""
    from chain.crypto_profile import profile
    from materials_api.platform.db import session_factory
    from materials_api.platform.keys import open_keystore
    from materials_api.platform.sealed_store import SealedStore

    return SealedStore(store, session_factory(engine), open_keystore(s), profile(s.crypto_profile).aead,
                       s.storage_wrapping_key)


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
def backup(dest: Path) -> None:
    """Copy the database, the objects, keys, deployments and the managed node's state into DEST
    (a new directory), consistently, while the service runs."""
    from materials_api.platform.backup import backup as make_backup

    from chain.keystore import KeyStoreError
    from materials_api.platform.keys import open_keystore

    s, engine, store = _parts()
    if s.db_url.startswith("sqlite") and not Path(s.db_url.split("///", 1)[-1]).exists():
        fail(f"nothing to back up: no database in {s.home}")
    try:
        governor = open_keystore(s).load("governor")
    except KeyStoreError as exc:
        fail(f"{exc.message} [{exc.code}]", 2)
    if governor is None:
        fail("the key store holds no governor key to sign the backup with", 2)
    summary = _carry_out(make_backup, s, engine, _sealing(s, engine, store), dest, signer=governor)
    click.echo(f"backup written to {summary.path}")
    click.echo(f"  database:   {summary.database}")
    click.echo(f"  objects:    {summary.objects:,} ({summary.object_bytes:,} bytes)")
    click.echo(f"  home files: {summary.files} (keys, deployments)")
    click.echo(f"  node state: {'yes' if summary.node_state else 'no (external chain)'}")
    click.echo(f"  total:      {summary.total_bytes:,} bytes; every file's SHA-256 in manifest.json")
    click.echo(f"  signed by the governor {summary.signer}: restore with --governor {summary.signer}")


@click.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--governor", envvar="QIYEMA_TRUSTED_GOVERNOR", default=None,
              help="the governor's address (qiyema chain status, the trust list): the backup must carry its "
                   "signature")
@click.option("--allow-unsigned", is_flag=True,
              help="restore a backup nobody signed (made before backups were signed): its files are still "
                   "checked against its manifest, but nothing vouches for the manifest")
@click.option("--wait", "wait", default=300.0, show_default=True, type=click.FloatRange(0),
              help="seconds to spend re-sending what the chain lacks (0: leave it to the service)")
def restore(src: Path, governor: str | None, allow_unsigned: bool, wait: float) -> None:
    """Restore a backup the governor signed into an empty home (and empty database), then check
    the chain: whatever it lacks (a reset chain, another chain) is queued again and re-sent."""
    from eth_utils import is_address

    from chain.errors import ChainError
    from materials_api.platform.restore import restore as run_restore

    if governor is None and not allow_unsigned:
        fail("say whose signature the backup must carry: --governor ADDRESS (or QIYEMA_TRUSTED_GOVERNOR); "
             "the address is never taken from the backup itself", 2)
    if governor is not None and not is_address(governor):
        fail(f"--governor {governor[:60]!r} is not an address", 2)
    if allow_unsigned and governor is None:
        click.echo("WARNING: --allow-unsigned: nothing vouches for this backup's manifest", err=True)
    s, engine, store = _parts()
    summary = _carry_out(run_restore, s, engine, store, src, governor=governor)
    click.echo(f"restored the backup of {summary.backup_created_at} into {s.home}")
    click.echo(f"  database:   {summary.database}")
    click.echo(f"  objects:    {summary.objects:,}")
    click.echo(f"  home files: {summary.files}")
    click.echo(f"  node state: {summary.node_state}")
    click.echo("  the governor's API key is never in a backup: `qiyema init` writes a new one")

    with opened() as (runtime, services):
        d = runtime.chain.deployment
        before = summary.deployments.get(d.chain_id)
        if before and before["address"] == d.address and before["genesis_hash"] == d.genesis_hash:
            click.echo(f"chain: the same chain (id {d.chain_id}, genesis {d.genesis_hash[:10]}…), "
                       f"Qiyema at {d.address}")
        else:
            if before:
                was = f"{before['address']} on genesis {before['genesis_hash'][:10]}…"
            else:  # the backup's deployments are on other chain ids (or it had none)
                was = "on chain id " + ", ".join(map(str, summary.deployments)) if summary.deployments else "not deployed"
            click.echo(f"chain: RESET — the contract was {was}; deployed again at {d.address} "
                       f"(genesis {d.genesis_hash[:10]}…)")
        try:
            requeued = services.requeue_lost()
            lost = {k: v for k, v in requeued.items() if v}
            if lost:
                click.echo("chain lacks what the database holds; queued again: "
                           + ", ".join(f"{n:,} {k}" for k, n in lost.items()))
            left = services.settle(runtime.settings, wait) if wait else services.unsettled()
        except ChainError as exc:
            fail(f"chain: {exc} (the service re-sends it when it starts)", 3)
        if any(left.values()):
            click.echo("still waiting for the chain (the service finishes it when it starts): "
                       + ", ".join(f"{n:,} {k}" for k, n in left.items() if n))
        elif lost:
            click.echo("re-anchored: the chain now witnesses everything the database holds")
        else:
            click.echo("the chain witnesses everything the database holds")
