"""Everything a running service holds: settings, database, storage and the chain, wired once.

Chain set-up is idempotent: keys are created once (in the key store, materials_api/platform/keys.py), the contract is deployed once per chain (and
again only if that chain was reset: each domain's reconciler then re-sends what the new chain
lacks), and roles are granted only where missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from chain.client import ChainClient
from chain.durable import write_atomic
from chain.deploy import Deployment, deploy, load_record
from chain.crypto_profile import PROFILES, CryptoError, profile
from chain.keystore import KeyStoreError
from chain.ledger import QiyemaLedger
from chain.node import AnvilNode
from chain.signers import Signer
from chain.trust import Trust, TrustedDeployment, TrustList
from chain.clock import SYSTEM, Clock
from materials_api.platform.config import Settings
from materials_api.platform.coordination import DatabaseNonceStore
from materials_api.platform.db import make_engine, migrate, session_factory
from materials_api.platform.keys import SERVICE_PURPOSES, ServiceKeys, open_keystore, plaintext_keys
from materials_api.platform.sealed_store import SealedStore
from materials_api.platform.storage import ObjectStore, open_store

log = logging.getLogger("qiyema")

FUNDING_WEI = 10**21  # 1,000 ether on a development node


@dataclass
class ChainContext:
    client: ChainClient
    ledger: QiyemaLedger
    deployment: Deployment
    keys: ServiceKeys
    trust_list: TrustList | None = None  # governor-signed; every verification path accepts only these
    tree_hash: str = "keccak256"  # the profile's hash for leaves and trees (sm3 under gm; chain/proof.py)
    _earlier: dict = field(default_factory=dict, repr=False)

    @property
    def trust(self) -> Trust:
        return Trust.of(self.trust_list.deployments, self.tree_hash)

    def earlier_ledgers(self) -> list[QiyemaLedger]:
        """The deployments before this one on this chain (on the trust list, code still there):
        evidence anchored on them keeps naming them, so revocations and status changes are sent
        there too. Empty until an upgrade."""
        found = []
        for d in self.trust_list.deployments if self.trust_list else []:
            if d.chain_id != self.deployment.chain_id or d.address.lower() == self.deployment.address.lower():
                continue
            if self._earlier.get(d.address) is None:
                if not self.client.code_at(d.address):
                    continue  # a reset chain: nothing there to keep current
                self._earlier[d.address] = QiyemaLedger(self.client, Deployment(
                    chain_id=d.chain_id, contract=self.deployment.contract, address=d.address, tx_hash="",
                    block_number=d.first_block, code_hash=d.code_hash, genesis_hash="", deployed_at=0.0))
            found.append(self._earlier[d.address])
        return found

    # The active generation of each account, so a rotation reaches a running service.
    @property
    def governor(self) -> Signer:
        return self.keys.account("governor")

    @property
    def registrar(self) -> Signer:
        return self.keys.account("registrar")

    @property
    def notary(self) -> Signer:
        return self.keys.account("notary")


def service_keys(settings: Settings, sessions=None) -> ServiceKeys:
    """The service's keys from the configured custody; refuses to start beside plaintext key
    files an older install left (they are moved by `qiyema keys migrate`)."""
    left = plaintext_keys(settings)
    if left:
        raise KeyStoreError("plaintext_keys", f"{len(left)} plaintext key file(s) in {settings.keys_dir} "
                                              f"({', '.join(p.name for p in left[:3])}): run `qiyema keys migrate` "
                                              "to move them into the key store")
    store = open_keystore(settings)
    store.check_passphrase()
    return ServiceKeys(store, sessions)


def chain_accounts(settings: Settings, sessions=None) -> dict[str, Signer]:
    keys = service_keys(settings, sessions)
    return {name: keys.account(name) for name in SERVICE_PURPOSES}


def managed_node(settings: Settings) -> AnvilNode | None:
    if settings.chain_rpc_url:
        return None
    return AnvilNode(settings.node_dir, port=settings.node_port, chain_id=settings.chain_id,
                     state_interval=settings.node_state_interval, block_time=settings.node_block_time or None)


def connect_chain(settings: Settings, client: ChainClient | None = None, clock: Clock = SYSTEM) -> ChainClient:
    if client is not None:
        return client
    url = settings.chain_rpc_url or f"http://127.0.0.1:{settings.node_port}"
    return ChainClient.from_url(url, confirmations=settings.confirmations, timeout=settings.chain_timeout,
                                request_timeout=settings.chain_request_timeout,
                                breaker_cooldown=settings.chain_breaker_cooldown, clock=clock)


def setup_chain(settings: Settings, client: ChainClient, sessions=None, *, upgrade: bool = False) -> ChainContext:
    keys = service_keys(settings, sessions)
    accounts = {name: keys.account(name) for name in SERVICE_PURPOSES}
    for account in accounts.values():
        client.fund(account.address, FUNDING_WEI // 10, funder=accounts["governor"])
    previous = load_record(settings.deployments_dir, client.chain_id)
    deployment, created = deploy(
        client,
        accounts["governor"],
        settings.deployments_dir,
        grants={"REGISTRAR_ROLE": [accounts["registrar"].address], "NOTARY_ROLE": [accounts["notary"].address]},
        upgrade=upgrade,
    )
    ledger = QiyemaLedger(client, deployment)
    if created and previous is not None and not upgrade:
        log.warning("the chain was reset (no code at %s): deployed the contracts again at %s; what the "
                    "chain lost is sent again by the background work", previous.address, deployment.address)
    elif created:
        log.info("deployed the contracts at %s", deployment.address)
    trust_list = publish_trust_list(settings, deployment, accounts["governor"])
    return ChainContext(client=client, ledger=ledger, deployment=deployment, keys=keys, trust_list=trust_list,
                        tree_hash=profile(settings.crypto_profile).tree_hash)


def read_trust_list(settings: Settings) -> TrustList | None:
    import json

    path = settings.trust_list_path
    if not path.exists():
        return None
    return TrustList.from_json(json.loads(path.read_text(encoding="utf-8")))


def publish_trust_list(settings: Settings, deployment: Deployment, governor: Signer) -> TrustList:
    """The home's trust list with `deployment` on it, signed by the governor once per change (at
    start or upgrade, never on a request). Deployments are only appended: evidence anchored on an
    earlier one keeps naming it."""
    import json
    import time

    current = read_trust_list(settings) or TrustList(governor.address, 0, profile=settings.crypto_profile)
    entry = TrustedDeployment(deployment.chain_id, deployment.address, deployment.code_hash, deployment.block_number)
    updated = current.with_deployment(entry)
    if updated is current and current.signature and current.governor.lower() == governor.address.lower():
        return current
    if current.governor.lower() != governor.address.lower() or current.profile != settings.crypto_profile:
        # a rotated governor signs the list anew (and a list from before it said the profile)
        updated = TrustList(governor.address, 0, list(updated.deployments), profile=settings.crypto_profile)
    updated.sign(governor, int(time.time()))
    path = settings.trust_list_path
    write_atomic(path, json.dumps(updated.to_json(), indent=2).encode())
    log.info("trust list signed: %d deployment(s)", len(updated.deployments))
    return updated


def fix_profile(settings: Settings) -> str:
    """The home's crypto profile, chosen by its first start (`qiyema init --profile`) and written
    to `crypto-profile` in the home: a later start takes it from there, and one told another
    profile (QIYEMA_CRYPTO_PROFILE) is refused — one deployment never mixes the two."""
    path = settings.home / "crypto-profile"
    if path.exists():
        recorded = path.read_text().strip()
        if recorded not in PROFILES:
            raise CryptoError(f"{path} names no crypto profile ({recorded[:20]!r}): it holds intl or gm")
        if "crypto_profile" in settings.model_fields_set and settings.crypto_profile != recorded:
            raise CryptoError(f"this home was set up with the {recorded} crypto profile, not {settings.crypto_profile}: "
                              "a deployment never mixes the two (set up another home for the other one)")
        settings.crypto_profile = recorded
    if not path.exists():
        write_atomic(path, (settings.crypto_profile + "\n").encode())
    return settings.crypto_profile


def sealed(store: ObjectStore, settings: Settings, sessions, keystore) -> ObjectStore:
    """The object store as the services use it: sealing what it stores (unless switched off)."""
    if not settings.encrypt_at_rest:
        return store
    return SealedStore(store, sessions, keystore, profile(settings.crypto_profile).aead, settings.storage_wrapping_key)


class Runtime:
    def __init__(self, settings: Settings, engine: Engine, chain: ChainContext, node: AnvilNode | None,
                 node_started: bool, clock: Clock = SYSTEM):
        self.settings = settings
        self.clock = clock  # every expiry the services judge reads this clock
        self.engine = engine
        self.sessions = session_factory(engine)
        self.chain = chain
        self.storage = sealed(open_store(settings), settings, self.sessions, chain.keys.store)
        self.node = node
        self.node_started = node_started

    @classmethod
    def open(cls, settings: Settings, *, client: ChainClient | None = None, start_node: bool = True,
             upgrade: bool = False, clock: Clock = SYSTEM) -> "Runtime":
        settings.home.mkdir(parents=True, exist_ok=True)
        fix_profile(settings)
        migrate(settings.db_url)
        engine = make_engine(settings.db_url)
        node = managed_node(settings) if client is None else None
        started = bool(node and start_node and node.start())
        sessions = session_factory(engine)
        try:
            client = connect_chain(settings, client, clock)
            client.nonces = DatabaseNonceStore(sessions, clock=clock)
            chain = setup_chain(settings, client, sessions, upgrade=upgrade)
        except BaseException:
            if started:
                node.stop()
            raise
        return cls(settings, engine, chain, node, started, clock)

    def close(self) -> None:
        self.engine.dispose()
        if self.node_started and self.node is not None:
            self.node.stop()
            self.node_started = False
