"""`qiyema network`: a permissioned Clique network of geth nodes under $QIYEMA_HOME/network."""

from __future__ import annotations

import click

from materials_api.cli.common import fail, settings


@click.group()
def network() -> None:
    """A permissioned Clique network of geth nodes under $QIYEMA_HOME/network."""


def _network():
    from chain.network import GethNetwork

    return GethNetwork(settings().home / "network")


def _call(fn):
    from chain.geth import NetworkError

    try:
        return fn()
    except NetworkError as exc:
        fail(f"network: {exc}", 3)


@network.command("up")
@click.option("--signers", default=3, show_default=True, type=click.IntRange(1, 21), help="signer nodes (new network)")
@click.option("--rpc-nodes", default=1, show_default=True, type=click.IntRange(1, 8),
              help="non-signing JSON-RPC nodes (new network)")
@click.option("--period", default=1, show_default=True, type=click.IntRange(1, 60), help="seconds per block (new network)")
@click.option("--chain-id", default=15150, show_default=True, type=int, help="chain id (new network)")
@click.option("--base-port", default=30400, show_default=True, type=click.IntRange(1024, 65000),
              help="p2p ports from here; authrpc +100, HTTP +200 (new network)")
def network_up(signers: int, rpc_nodes: int, period: int, chain_id: int, base_port: int) -> None:
    """Create the network on first use (genesis, keys, the service's accounts funded), then start
    every node and wait until blocks are sealed."""
    from materials_api.platform.runtime import chain_accounts

    net = _network()
    if not net.exists:
        fund = [a.address for a in chain_accounts(settings()).values()]
        _call(lambda: net.create(signers=signers, rpc_nodes=rpc_nodes, chain_id=chain_id, period=period,
                                 base_port=base_port, fund=fund))
        click.echo(f"created a {signers}-signer Clique network (chain id {chain_id}, {period} s blocks) at {net.root}")
    spec = _call(net.up)
    click.echo("network up; point the service at it with:")
    click.echo(f"  export QIYEMA_CHAIN_RPC_URL={net.rpc_url(spec)}")
    click.echo(f"  export QIYEMA_CONFIRMATIONS=2 QIYEMA_CHAIN_MAX_HEAD_AGE={max(30, 10 * spec.period)}")


@network.command("down")
def network_down() -> None:
    """Stop every node of the network (by PID; data is kept)."""
    stopped = _call(_network().down)
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@network.command("status")
def network_status() -> None:
    """Each node's process, peers and head; the signer set as the chain has it."""
    net = _network()
    rows = _call(net.status)
    click.echo(f"{'node':<10} {'role':<7} {'running':<8} {'peers':>5} {'head':>8}  address")
    for r in rows:
        click.echo(f"{r.name:<10} {r.role:<7} {'yes' if r.running else 'no':<8} "
                   f"{'-' if r.peers is None else r.peers:>5} {'-' if r.head is None else r.head:>8}  {r.address or ''}")
    if any(r.running for r in rows):
        signers = _call(net.signers)
        click.echo(f"signers ({len(signers)}): {', '.join(signers)}")


@network.command("add-signer")
def network_add_signer() -> None:
    """Start a new signer node and have the current signers vote it in (Clique)."""
    node = _call(_network().add_signer)
    click.echo(f"{node.name} ({node.address}) is a signer")


@network.command("remove-signer")
@click.argument("name")
def network_remove_signer(name: str) -> None:
    """Have the other signers vote NAME out (Clique), then stop it."""
    node = _call(lambda: _network().remove_signer(name))
    click.echo(f"{node.name} ({node.address}) voted out and stopped")


@network.command("heal")
@click.option("--window", default=10.0, show_default=True, type=click.FloatRange(1, 600),
              help="seconds with no head moving before the signers count as stalled")
def network_heal(window: float) -> None:
    """Look for Clique's stall (signers forked with equal difficulty, none sealing) for WINDOW
    seconds; if found, keep one side and rewind the others' signers onto it."""
    from chain.clique_stall import find_stall, heal

    net = _network()
    stall = _call(lambda: find_stall(net, window))
    if stall is None:
        click.echo(f"no stall: the signers sealed within {window:g} s, or they are on one chain")
        return
    click.echo(stall.describe())
    _call(lambda: heal(net, stall))
    click.echo("healed: the rewound signers imported the kept chain and seal again")


@network.command("watch")
@click.option("--window", default=10.0, show_default=True, type=click.FloatRange(1, 600),
              help="seconds with no head moving before the signers count as stalled")
def network_watch(window: float) -> None:
    """Run beside the nodes (e.g. under systemd): heal every Clique stall as `heal` does, until
    stopped (Ctrl-C or SIGTERM)."""
    import signal
    import threading

    from chain.clique_stall import Watchdog

    net = _network()
    _call(net.spec)  # no network: say so now, not on the watchdog's thread
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dog = Watchdog(net, window, on_heal=lambda s: click.echo(f"healed: {s.describe()}")).start()
    click.echo(f"watching {net.root} for Clique stalls (window {window:g} s)")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    dog.stop()
    click.echo(f"stopped; stalls healed: {len(dog.healed)}")
