"""Everything a running service holds: settings, database, storage and the chain, wired once.

Chain set-up is idempotent: keys are created once, the contract is deployed once per chain (and
again only if that chain was reset, after which every enterprise is re-registered from the
database), and roles are granted only where missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from chain import keys
from chain.client import ChainClient
from chain.deploy import Deployment, deploy
from chain.ledger import QiyemaLedger
from chain.node import AnvilNode

from .config import Settings
from .db import make_engine, migrate, session_factory
from .models import ChainState, Enterprise
from .coordination import DatabaseNonceStore
from .storage import open_store

log = logging.getLogger("qiyema")

FUNDING_WEI = 10**21  # 1,000 ether on a development node


@dataclass
class ChainContext:
    client: ChainClient
    ledger: QiyemaLedger
    deployment: Deployment
    governor: LocalAccount
    registrar: LocalAccount
    notary: LocalAccount


def chain_accounts(settings: Settings) -> dict[str, LocalAccount]:
    return {name: keys.load_or_create(settings.keys_dir / f"{name}.eth") for name in ("governor", "registrar", "notary")}


def managed_node(settings: Settings) -> AnvilNode | None:
    if settings.chain_rpc_url:
        return None
    return AnvilNode(settings.node_dir, port=settings.node_port, chain_id=settings.chain_id,
                     state_interval=settings.node_state_interval)


def connect_chain(settings: Settings, client: ChainClient | None = None) -> ChainClient:
    if client is not None:
        return client
    url = settings.chain_rpc_url or f"http://127.0.0.1:{settings.node_port}"
    return ChainClient.from_url(url, confirmations=settings.confirmations, timeout=settings.chain_timeout)


def setup_chain(settings: Settings, client: ChainClient, sessions: sessionmaker | None = None) -> ChainContext:
    accounts = chain_accounts(settings)
    for account in accounts.values():
        client.fund(account.address, FUNDING_WEI // 10)
    deployment, created = deploy(
        client,
        accounts["governor"],
        settings.deployments_dir,
        grants={"REGISTRAR_ROLE": [accounts["registrar"].address], "NOTARY_ROLE": [accounts["notary"].address]},
    )
    ledger = QiyemaLedger(client, deployment)
    if sessions is not None:
        _requeue_if_chain_lost_state(sessions, ledger, created)
    return ChainContext(
        client=client,
        ledger=ledger,
        deployment=deployment,
        governor=accounts["governor"],
        registrar=accounts["registrar"],
        notary=accounts["notary"],
    )


def _requeue_if_chain_lost_state(sessions: sessionmaker, ledger: QiyemaLedger, new_deployment: bool) -> None:
    """If the chain witnesses fewer enterprises than the database says it confirmed (a new
    deployment, a reset or a node that lost its latest state), queue them all again; the
    reconciler then sends only what the chain lacks."""
    with sessions() as s:
        confirmed = s.scalar(select(func.count()).select_from(Enterprise)
                             .where(Enterprise.chain_state == ChainState.CONFIRMED.value))
    if not new_deployment and ledger.enterprise_count() >= confirmed:
        return
    with sessions.begin() as s:
        n = s.execute(update(Enterprise).where(Enterprise.chain_state == ChainState.CONFIRMED.value)
                      .values(chain_state=ChainState.PENDING.value)).rowcount
    if n:
        log.warning("the chain lost state (contract %s): %d enterprises queued for re-registration",
                    ledger.deployment.address, n)


class Runtime:
    def __init__(self, settings: Settings, engine: Engine, chain: ChainContext, node: AnvilNode | None,
                 node_started: bool):
        self.settings = settings
        self.engine = engine
        self.sessions = session_factory(engine)
        self.chain = chain
        self.storage = open_store(settings)
        self.node = node
        self.node_started = node_started

    @classmethod
    def open(cls, settings: Settings, *, client: ChainClient | None = None, start_node: bool = True) -> "Runtime":
        settings.home.mkdir(parents=True, exist_ok=True)
        migrate(settings.db_url)
        engine = make_engine(settings.db_url)
        node = managed_node(settings) if client is None else None
        started = bool(node and start_node and node.start())
        sessions = session_factory(engine)
        try:
            client = connect_chain(settings, client)
            client.nonces = DatabaseNonceStore(sessions)
            chain = setup_chain(settings, client, sessions)
        except BaseException:
            if started:
                node.stop()
            raise
        return cls(settings, engine, chain, node, started)

    def close(self) -> None:
        self.engine.dispose()
        if self.node_started and self.node is not None:
            self.node.stop()
            self.node_started = False
