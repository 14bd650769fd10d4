"""One client over web3.py for any JSON-RPC endpoint and for in-process py-evm.

Signs locally (keys never leave the process), manages nonces for concurrent senders, estimates
gas, retries transient RPC failures, waits for receipts with a configurable number of
confirmations, and raises typed errors (`chain.errors`) with custom errors decoded from the ABI.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Protocol, TypeVar

import requests
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    BlockNotFound,
    ContractCustomError,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware

from .clock import SYSTEM, Clock
from .errors import (
    ChainAnswerMalformed,
    ChainError,
    ChainNotAnswering,
    ChainTimeout,
    ChainUnreachable,
    TransactionReverted,
)
from .reverts import Reverts, tester_reverted
from .rpc import JsonRpc, RpcError
from .signers import Signer

log = logging.getLogger("qiyema.chain")

T = TypeVar("T")

_CONTRACT_REVERTS = (ContractCustomError, ContractLogicError)


def _reverts() -> tuple[type, ...]:
    return _CONTRACT_REVERTS + tester_reverted()


_TRANSIENT = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError, OSError)
_ALREADY_SENT = ("already known", "known transaction", "already imported")
_NONCE_STALE = ("nonce too low", "nonce too high", "replacement transaction underpriced", "invalid nonce")


class NonceSlot(Protocol):
    """An account's nonce held exclusively while one transaction is signed and sent."""

    floor: int | None  # the lowest nonce not known to be used, or None to trust the node

    def used(self, nonce: int) -> None: ...


class NonceStore(Protocol):
    """Nonces shared by several processes (service instances, the CLI beside a service) that
    send from the same account, possibly through different nodes."""

    def reserve(self, chain: str, address: str) -> ContextManager[NonceSlot]: ...

    def forget(self, chain: str, address: str) -> None:
        """Drop what is remembered of `address`'s nonces: the node's pending count is the truth."""


class _LocalSlot:
    def __init__(self, nonces: dict, address: str):
        self._nonces, self._address = nonces, address
        self.floor = nonces.get(address)

    def used(self, nonce: int) -> None:
        self._nonces[self._address] = nonce + 1


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    gas_used: int
    status: int
    logs: list


class ChainClient:
    def __init__(
        self,
        w3: Web3,
        *,
        confirmations: int = 1,
        timeout: float = 60.0,
        poll_interval: float = 0.05,
        retries: int = 4,
        gas_multiplier: float = 1.25,
        nonces: NonceStore | None = None,
        request_timeout: float = 3.0,
        breaker_cooldown: float = 5.0,
        clock: Clock = SYSTEM,
    ):
        if confirmations < 1:
            raise ValueError("confirmations counts the including block: it is at least 1")
        self.w3 = w3
        self.confirmations = confirmations
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.retries = retries
        self.gas_multiplier = gas_multiplier
        # Bounded waiting: one request waits at most `request_timeout` (the HTTP provider's
        # time-out, and the budget for retrying a refused connection). A node that did not answer
        # in time is not asked again for `breaker_cooldown` seconds (the circuit is open: every
        # call fails at once); then one call probes it, and an answer closes the circuit.
        self.request_timeout = request_timeout
        self.breaker_cooldown = breaker_cooldown
        self.clock = clock  # the breaker's cool-down (waits on the node itself are real time)
        self._breaker_lock = threading.Lock()
        self._open_until = 0.0  # monotonic; 0: closed
        self._opened_because = ""
        self._nonce_lock = threading.Lock()
        self._local_nonces: dict[str, int] = {}
        # Several processes sending from one account share a `NonceStore`; alone, this process
        # remembers its own next nonce and reads the node's pending count once.
        self.nonces = nonces
        self.reverts = Reverts()  # custom errors of every ABI seen, for decoding reverts
        self._contracts: dict[tuple[str, int], Any] = {}
        self._chain_id: int | None = None
        self._chain_key: str | None = None
        self._fee_cache: tuple[float, dict] | None = None
        self._serial: threading.RLock | None = None
        self._raw: JsonRpc | None = None  # plain keep-alive JSON-RPC (nodes reached by URL)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, *, request_timeout: float = 3.0, **kw) -> "ChainClient":
        provider = Web3.HTTPProvider(
            url,
            request_kwargs={"timeout": request_timeout},
            exception_retry_configuration=None,  # retries are ours, so they are typed and counted
            # eth_chainId and other constants asked once: web3's validation asks for the chain id
            # before every call, which doubled the round trips of a verification.
            cache_allowed_requests=True,
        )
        w3 = Web3(provider)
        # Transactions are built, estimated and signed here; web3's own layers for that (and ENS)
        # would only add round trips and per-call work to every read.
        for name in ("gas_price_strategy", "ens_name_to_address", "validation", "gas_estimate"):
            w3.middleware_onion.remove(name)
        # Proof-of-authority chains (Clique, QBFT) carry seals in extraData beyond 32 bytes.
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        client = cls(w3, request_timeout=request_timeout, **kw)
        client._raw = JsonRpc(url, timeout=request_timeout)
        return client

    @classmethod
    def in_process(cls, **kw) -> "ChainClient":
        """A fresh py-evm chain in this process (eth-tester), with funded unlocked accounts."""
        from web3 import EthereumTesterProvider

        client = cls(Web3(EthereumTesterProvider()), **kw)
        client._serial = threading.RLock()  # py-evm is not thread-safe: one call at a time
        return client

    # --- basic reads --------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: self.w3.eth.chain_id)
        return self._chain_id

    def block_number(self) -> int:
        return self._rpc(lambda: self.w3.eth.block_number)

    def head_timestamp(self) -> int:
        return self._rpc(lambda: self.w3.eth.get_block("latest")["timestamp"])

    def block(self, number: int):
        """Block `number`'s header (hash, parentHash, timestamp, ...), or None when the node has
        no such block (a shorter chain after a reset or a reorg)."""
        try:
            return self._rpc(lambda: self.w3.eth.get_block(number))
        except BlockNotFound:
            return None

    def logs(self, address: str, from_block: int, to_block: int) -> list:
        """Every log the contract at `address` emitted in the block range (raw, undecoded)."""
        return self._rpc(lambda: self.w3.eth.get_logs({"address": Web3.to_checksum_address(address),
                                                       "fromBlock": from_block, "toBlock": to_block}))

    def code_at(self, address: str) -> bytes:
        return bytes(self._rpc(lambda: self.w3.eth.get_code(Web3.to_checksum_address(address))))

    def genesis_hash(self) -> str:
        return self._rpc(lambda: self.w3.eth.get_block(0)["hash"].to_0x_hex())

    def balance(self, address: str) -> int:
        return self._rpc(lambda: self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def contract(self, address: str, abi: list):
        """A contract object, built once per address: building one parses the whole ABI, which
        would otherwise dominate a verification's cost."""
        key = (Web3.to_checksum_address(address), id(abi))
        if key not in self._contracts:
            self.reverts.register(abi)
            self._contracts[key] = self.w3.eth.contract(address=key[0], abi=abi)
        return self._contracts[key]

    def call(self, fn, block: int | str = "latest") -> Any:
        """A view call; reverts become `TransactionReverted`."""
        try:
            return self._rpc(lambda: fn.call(block_identifier=block))
        except _reverts() as exc:
            raise self.reverts.from_call(exc) from None

    def request(self, method: str, params: list):
        """One plain JSON-RPC call (hex in, hex out: no web3 formatting), with this client's
        retries and circuit breaker. The read path of verification."""
        if self._raw is not None:
            return self._rpc(lambda: self._raw.request(method, params))
        reply = self._rpc(lambda: self.w3.provider.make_request(method, params))  # an in-process chain
        if reply.get("error"):
            err = reply["error"]
            raise RpcError(int(err.get("code", -32603)), str(err.get("message", err)), err.get("data"))
        return reply.get("result")

    def eth_call(self, to: str, data: bytes, block: int | str = "latest") -> bytes:
        """A view call with calldata encoded by the caller; reverts become `TransactionReverted`."""
        tag = hex(block) if isinstance(block, int) else block
        try:
            if self._raw is None:  # an in-process chain: through web3 (it fills in what py-evm needs)
                return bytes(self._rpc(lambda: self.w3.eth.call({"to": Web3.to_checksum_address(to), "data": data},
                                                                 block_identifier=block)))
            result = self.request("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag])
        except RpcError as exc:
            if isinstance(exc.data, str) and exc.data.startswith("0x") and len(exc.data) >= 10:
                name, args = self.reverts.decode(exc.data)
                raise TransactionReverted(name, args, raw=exc.data) from None
            if "revert" in exc.message.lower():
                raise TransactionReverted("Reverted", ()) from None
            raise
        except _reverts() as exc:
            raise self.reverts.from_call(exc) from None
        return bytes.fromhex((result or "0x").removeprefix("0x"))

    # --- writes ---------------------------------------------------------------------------
    def send(self, account: Signer, fn=None, *, tx: dict | None = None, gas: int | None = None) -> str:
        """Sign and send a contract call (`fn`) or a plain transaction (`tx`); returns its hash.

        Gas is estimated first, so a call that would revert raises `TransactionReverted` with the
        decoded error and costs nothing.
        """
        base: dict = dict(tx or {})
        if fn is not None:
            # Encoded locally: web3's build_transaction would cost several RPC round trips.
            base.update(to=fn.address, data=fn._encode_transaction_data())
        base.setdefault("value", 0)
        base.update(self._fees(), chainId=self.chain_id)
        base["from"] = account.address
        if gas is None:
            estimate_tx = {k: v for k, v in base.items() if k not in ("gas", "nonce")}
            try:
                gas = int(self._rpc(lambda: self.w3.eth.estimate_gas(estimate_tx)) * self.gas_multiplier)
            except _reverts() as exc:
                raise self.reverts.from_call(exc) from None
            except Web3RPCError as exc:
                raise self.reverts.from_rpc(exc) from None
        base["gas"] = gas
        for attempt in range(self.retries + 1):
            with self._nonce_lock, self._reserve(account.address) as slot:
                pending = None
                if slot.floor is None or self.nonces is not None:
                    pending = self._rpc(lambda: self.w3.eth.get_transaction_count(account.address, "pending"))
                nonce = max(n for n in (pending, slot.floor) if n is not None)
                signed = account.sign_transaction({k: v for k, v in base.items() if k != "from"} | {"nonce": nonce})
                tx_hash = "0x" + keccak(signed.raw_transaction).hex()
                try:
                    self._rpc(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
                except Web3RPCError as exc:
                    message = str(exc).lower()
                    if any(s in message for s in _ALREADY_SENT):
                        slot.used(nonce)
                        return tx_hash
                    self._local_nonces.pop(account.address, None)
                    if any(s in message for s in _NONCE_STALE) and attempt < self.retries:
                        continue
                    raise self.reverts.from_rpc(exc) from None
                except ChainError:
                    # The node may or may not have it: re-read the pending nonce next time.
                    self._local_nonces.pop(account.address, None)
                    raise
                slot.used(nonce)
                return tx_hash
        raise ChainError("could not find a free nonce")  # pragma: no cover - loop always returns

    def transact(self, account: Signer, fn=None, *, tx: dict | None = None, gas: int | None = None,
                 confirmations: int | None = None, timeout: float | None = None) -> Receipt:
        """Send and wait for the receipt (and confirmations)."""
        return self.wait(self.send(account, fn, tx=tx, gas=gas), confirmations=confirmations, timeout=timeout)

    def wait(self, tx_hash: str, *, confirmations: int | None = None, timeout: float | None = None) -> Receipt:
        """Wait for `tx_hash` to be mined and buried under `confirmations - 1` blocks."""
        confirmations = confirmations or self.confirmations
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        receipt = None
        while True:
            if receipt is None:
                try:
                    receipt = self._rpc(lambda: self.w3.eth.get_transaction_receipt(tx_hash))
                except TransactionNotFound:
                    receipt = None
            if receipt is not None:
                if receipt["status"] != 1:
                    raise self._explain_failure(tx_hash, receipt)
                if confirmations == 1 or self.block_number() >= receipt["blockNumber"] + confirmations - 1:
                    return Receipt(
                        tx_hash=tx_hash,
                        block_number=receipt["blockNumber"],
                        gas_used=receipt["gasUsed"],
                        status=receipt["status"],
                        logs=list(receipt["logs"]),
                    )
            if time.monotonic() > deadline:
                state = "mined" if receipt is not None else "not mined"
                raise ChainTimeout(f"{tx_hash} {state} after {confirmations} confirmation(s) wait timed out")
            time.sleep(self.poll_interval)

    def fund(self, address: str, minimum_wei: int, *, funder: Signer | None = None) -> None:
        """Top `address` up to `minimum_wei` from the node's first unlocked account, or else from
        `funder`'s balance.

        Development nodes (anvil, py-evm) and a permissioned network's faucet node expose an
        unlocked account; a permissioned network's RPC nodes hold no keys, so there the service
        pays from its governor (funded in the genesis block) for the accounts it makes later
        (an issuer organisation's, a rotated key's). Neither: `ChainError` saying so.
        """
        have = self.balance(address)
        if have >= minimum_wei:
            return
        accounts = self._rpc(lambda: self.w3.eth.accounts)
        if not accounts and funder is not None and funder.address.lower() != address.lower():
            self.wait(self.send(funder, tx={"to": Web3.to_checksum_address(address), "value": minimum_wei - have},
                                gas=21_000))
            return
        if not accounts:
            raise ChainError(f"{address} has {have} wei and the node has no unlocked account to fund it")
        tx_hash = self._rpc(
            lambda: self.w3.eth.send_transaction(
                {"from": accounts[0], "to": Web3.to_checksum_address(address), "value": minimum_wei - have}
            )
        )
        self.wait(tx_hash.to_0x_hex())

    # --- events ---------------------------------------------------------------------------
    def events(self, event, from_block: int, to_block: int | None = None, *, chunk: int = 5000,
               argument_filters: dict | None = None) -> Iterable:
        """Decoded logs of `event` (e.g. `contract.events.BatchAnchored`) in a block range."""
        last = self.block_number() if to_block is None else to_block
        start = from_block
        while start <= last:
            end = min(start + chunk - 1, last)
            logs = self._rpc(
                lambda: event.get_logs(from_block=start, to_block=end, argument_filters=argument_filters)
            )
            yield from logs
            start = end + 1

    # --- internals ------------------------------------------------------------------------
    def _rpc(self, call: Callable[[], T]) -> T:
        """Run one RPC: a refused or reset connection is retried with backoff within the request
        time-out; a node that does not answer in time opens the circuit (see __init__)."""
        self._pass_breaker()
        started, delay = time.monotonic(), 0.2
        for attempt in range(self.retries + 1):
            try:
                if self._serial is not None:
                    with self._serial:
                        result = call()
                else:
                    result = call()
                if self._open_until:
                    self._close_breaker()
                return result
            except (requests.Timeout, TimeoutError) as exc:
                self._open_breaker(f"it did not answer within {self.request_timeout:g} s ({type(exc).__name__})")
                raise ChainNotAnswering(f"chain node did not answer within {self.request_timeout:g} s") from None
            except BadFunctionCallOutput as exc:
                raise ChainAnswerMalformed(f"the node's answer does not decode: {exc}") from None
            except _TRANSIENT as exc:
                if attempt == self.retries or time.monotonic() - started + delay > self.request_timeout:
                    raise ChainUnreachable(f"chain node unreachable: {type(exc).__name__}: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pass_breaker(self) -> None:
        if not self._open_until:
            return
        with self._breaker_lock:
            now = self.clock.monotonic()
            if now < self._open_until:
                raise ChainNotAnswering(f"chain node not asked: {self._opened_because}; "
                                        f"asked again in {self._open_until - now:.1f} s")
            # Half-open: this call probes the node; the others fail at once until it answers.
            self._open_until = now + self.request_timeout

    def _open_breaker(self, because: str) -> None:
        with self._breaker_lock:
            if not self._open_until:
                log.warning("chain node not answering: %s; not asked for %g s", because, self.breaker_cooldown)
            self._open_until = self.clock.monotonic() + self.breaker_cooldown
            self._opened_because = because

    def _close_breaker(self) -> None:
        with self._breaker_lock:
            if self._open_until:
                log.warning("chain node answers again")
            self._open_until = 0.0

    def forget_nonce(self, address: str) -> None:
        """A transaction from `address` is gone from every pool (dropped, or on a fork given up):
        its nonce is free again, so the next send takes the node's pending count instead of
        leaving a gap behind which every later transaction would wait."""
        self._local_nonces.pop(address, None)
        if self.nonces is not None:
            self.nonces.forget(self._nonce_chain(), address)

    def _nonce_chain(self) -> str:
        if self._chain_key is None:
            self._chain_key = f"{self.chain_id}:{self.genesis_hash()}"
        return self._chain_key

    @contextlib.contextmanager
    def _reserve(self, address: str):
        if self.nonces is None:
            yield _LocalSlot(self._local_nonces, address)
            return
        with self.nonces.reserve(self._nonce_chain(), address) as slot:
            yield slot

    def _fees(self) -> dict:
        # Fees move slowly and maxFee leaves 2x base-fee headroom: one look-up per second is enough.
        now = time.monotonic()
        if self._fee_cache and now - self._fee_cache[0] < 1.0:
            return self._fee_cache[1]
        fees = self._fetch_fees()
        self._fee_cache = (now, fees)
        return fees

    def _fetch_fees(self) -> dict:
        latest = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base_fee = latest.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": self._rpc(lambda: self.w3.eth.gas_price)}
        tip = 1_000_000_000 if base_fee > 0 else 0
        return {"maxFeePerGas": base_fee * 2 + tip, "maxPriorityFeePerGas": tip}

    def _explain_failure(self, tx_hash: str, receipt) -> TransactionReverted:
        """Replay a failed transaction as a call to recover the revert reason: on the state
        before its block, then on the state after it. The second catches a transaction that
        failed because another one earlier in the same block did the same write first (two
        writers racing on a network with 1 s blocks): before the block the call passes, after
        it the chain names the reason (e.g. RootAlreadyAnchored), which callers treat as done."""
        tx = self._rpc(lambda: self.w3.eth.get_transaction(tx_hash))
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
        for block in (receipt["blockNumber"] - 1, receipt["blockNumber"]):
            try:
                self._rpc(lambda: self.w3.eth.call(call, block_identifier=block))
            except _reverts() as exc:
                return self.reverts.from_call(exc, tx_hash=tx_hash)
            except Web3RPCError as exc:
                err = self.reverts.from_rpc(exc)
                if isinstance(err, TransactionReverted):
                    err.tx_hash = tx_hash
                    return err
        return TransactionReverted("OutOfGasOrReverted", (), tx_hash=tx_hash)
