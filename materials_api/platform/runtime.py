"""Everything a running service holds: settings, database, storage and the chain, wired once.

Chain set-up is idempotent: keys are created once, the contract is deployed once per chain (and
again only if that chain was reset: each domain's reconciler then re-sends what the new chain
lacks), and roles are granted only where missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine

from chain import keys
from chain.client import ChainClient
from chain.deploy import Deployment, deploy
from chain.ledger import QiyemaLedger
from chain.node import AnvilNode
from materials_api.platform.config import Settings
from materials_api.platform.coordination import DatabaseNonceStore
from materials_api.platform.db import make_engine, migrate, session_factory
from materials_api.platform.storage import open_store

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
    return ChainClient.from_url(url, confirmations=settings.confirmations, timeout=settings.chain_timeout,
                                request_timeout=settings.chain_request_timeout,
                                breaker_cooldown=settings.chain_breaker_cooldown)


def setup_chain(settings: Settings, client: ChainClient) -> ChainContext:
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
    if created:
        log.info("deployed the contracts at %s", deployment.address)
    return ChainContext(
        client=client,
        ledger=ledger,
        deployment=deployment,
        governor=accounts["governor"],
        registrar=accounts["registrar"],
        notary=accounts["notary"],
    )


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
            chain = setup_chain(settings, client)
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
