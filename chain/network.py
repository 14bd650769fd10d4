"""A permissioned Clique proof-of-authority network of geth v1.13.15 nodes on this machine.

Layout under one directory (normally `$QIYEMA_HOME/network`): network.json (chain id, period,
every node: name, role, address, ports, enode), genesis.json (the Clique genesis: initial
signers in extraData, funded accounts) and a data directory per node: geth/nodekey (its p2p
identity), config.toml (static peers), keystore/ and password (signers only), geth.pid, geth.log.

Signer nodes seal blocks with their own key, unlocked on that node only, and expose IPC only:
nothing on the network can use their accounts. RPC nodes seal nothing and serve JSON-RPC over
HTTP on 127.0.0.1; the service talks to those. Discovery is off: peers come from static lists.
Signers join and leave by Clique's vote (`clique_propose` on a majority of the current signers).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import requests
from eth_account import Account
from eth_keys import keys as eth_keys
from web3 import Web3

from .geth import NetworkError, NetworkSpec, NodeSpec, NodeStatus, geth_binary, ipc_call, write_secret
from .node import pid_alive, stop_pid

GAS_LIMIT = 300_000_000  # per block; see the genesis below


class GethNetwork:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.spec_file = self.root / "network.json"

    # --- the record -----------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self.spec_file.exists()

    def spec(self) -> NetworkSpec:
        if not self.exists:
            raise NetworkError(f"no network at {self.root}: run `qiyema network up` first")
        raw = json.loads(self.spec_file.read_text())
        return NetworkSpec(**{**raw, "nodes": [NodeSpec(**n) for n in raw["nodes"]]})

    def _save(self, spec: NetworkSpec) -> None:
        tmp = self.spec_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(spec), indent=2))
        tmp.replace(self.spec_file)

    def rpc_url(self, spec: NetworkSpec | None = None) -> str:
        spec = spec or self.spec()
        for n in spec.nodes:
            if n.role == "rpc" and not n.retired:
                return f"http://127.0.0.1:{n.http_port}"
        raise NetworkError("the network has no RPC node")

    def datadir(self, name: str) -> Path:
        return self.root / name

    # --- creation -------------------------------------------------------------------------------
    def create(self, *, signers: int = 3, rpc_nodes: int = 1, chain_id: int = 15150, period: int = 1,
               base_port: int = 30400, fund: list[str] = (), fund_wei: int = 10**24) -> NetworkSpec:
        """Write genesis and keys for a new network and initialise every node's database."""
        if self.exists:
            raise NetworkError(f"a network already exists at {self.root}")
        if signers < 1:
            raise NetworkError("a Clique network needs at least one signer")
        self.root.mkdir(parents=True, exist_ok=True)
        spec = NetworkSpec(chain_id=chain_id, period=period, base_port=base_port)
        for i in range(signers):
            spec.nodes.append(self._new_node(spec, f"signer-{i + 1}", "signer"))
        for i in range(rpc_nodes):
            spec.nodes.append(self._new_node(spec, f"rpc-{i + 1}", "rpc"))
        sealers = sorted(bytes.fromhex(n.address[2:]) for n in spec.nodes if n.role == "signer")
        genesis = {
            "config": {
                "chainId": chain_id, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
                "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0,
                "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
                "clique": {"period": period, "epoch": 30000},
            },
            "difficulty": "0x1",
            # A permissioned network's members pay only themselves: room for a city's batches
            # (two registerBatch of 500 take 25M gas) under the EIP-1559 target (half the limit),
            # so the base fee stays at its floor instead of climbing 12.5% a block under load.
            "gasLimit": hex(GAS_LIMIT),
            # Clique: 32 vanity bytes, the initial signers, 65 bytes for the seal.
            "extradata": "0x" + "00" * 32 + b"".join(sealers).hex() + "00" * 65,
            "alloc": {Web3.to_checksum_address(a): {"balance": hex(fund_wei)} for a in fund},
        }
        (self.root / "genesis.json").write_text(json.dumps(genesis, indent=2))
        self._save(spec)
        for n in spec.nodes:
            self._init_datadir(spec, n)
        return spec

    def _new_node(self, spec: NetworkSpec, name: str, role: str) -> NodeSpec:
        index = len(spec.nodes)
        datadir = self.datadir(name)
        (datadir / "geth").mkdir(parents=True, exist_ok=True)
        nodekey = secrets.token_bytes(32)
        write_secret(datadir / "geth" / "nodekey", nodekey.hex())
        pubkey = eth_keys.PrivateKey(nodekey).public_key.to_bytes().hex()
        p2p = spec.base_port + index
        node = NodeSpec(name=name, role=role, p2p_port=p2p, auth_port=spec.base_port + 100 + index,
                        http_port=spec.base_port + 200 + index if role == "rpc" else None,
                        enode=f"enode://{pubkey}@127.0.0.1:{p2p}")
        if role == "signer":
            account = Account.create()
            password = secrets.token_urlsafe(24)
            write_secret(datadir / "password", password)
            (datadir / "keystore").mkdir(exist_ok=True)
            keystore = Account.encrypt(account.key, password)
            write_secret(datadir / "keystore" / f"{account.address.lower()}.json", json.dumps(keystore))
            node.address = account.address
        return node

    def _init_datadir(self, spec: NetworkSpec, node: NodeSpec) -> None:
        datadir = self.datadir(node.name)
        result = subprocess.run([str(geth_binary()), "--datadir", str(datadir), "init",
                                 str(self.root / "genesis.json")], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise NetworkError(f"geth init failed for {node.name}: {result.stderr.strip()[-400:]}")
        self._write_peers(spec, node)

    def _write_peers(self, spec: NetworkSpec, node: NodeSpec) -> None:
        peers = [n.enode for n in spec.nodes if n.name != node.name and not n.retired]
        (self.datadir(node.name) / "config.toml").write_text(
            "[Node.P2P]\nStaticNodes = [\n" + "".join(f'  "{e}",\n' for e in peers) + "]\n")

    # --- processes ------------------------------------------------------------------------------
    def pid(self, name: str) -> int | None:
        try:
            pid = int((self.datadir(name) / "geth.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def command(self, spec: NetworkSpec, node: NodeSpec) -> list[str]:
        datadir = self.datadir(node.name)
        cmd = [
            str(geth_binary()), "--datadir", str(datadir), "--config", str(datadir / "config.toml"),
            "--networkid", str(spec.chain_id), "--port", str(node.p2p_port), "--nodiscover", "--nat", "none",
            "--syncmode", "full", "--authrpc.addr", "127.0.0.1", "--authrpc.port", str(node.auth_port),
            "--cache", "128", "--verbosity", "3",
        ]
        if node.role == "signer":
            # IPC only: the unlocked sealing key is reachable by nothing but this machine's user.
            # Sealing starts later (miner_start), once the node has caught up with its peers: signers
            # sealing side by side from a stale head fork the chain, and Clique can stall there.
            cmd += ["--miner.etherbase", node.address, "--unlock", node.address,
                    "--password", str(datadir / "password"),
                    "--miner.gaslimit", str(GAS_LIMIT)]  # else sealers walk the limit back to 30M
        else:
            cmd += ["--http", "--http.addr", "127.0.0.1", "--http.port", str(node.http_port),
                    "--http.api", "eth,net,web3,clique,txpool", "--http.vhosts", "localhost,127.0.0.1",
                    "--ipcdisable",
                    # No fee cap: the members pay no one but themselves, and under sustained load
                    # EIP-1559's base fee lifts a registerBatch of 500 past geth's 1-ether default.
                    "--rpc.txfeecap", "0"]
        return cmd

    def start_node(self, name: str, timeout: float = 120.0) -> bool:
        """Start one node unless it runs; True if this call started it."""
        spec = self.spec()
        node = spec.node(name)
        if node.retired:
            raise NetworkError(f"{name} was voted out of the network")
        if self.pid(name):
            return False
        datadir = self.datadir(name)
        log = open(datadir / "geth.log", "ab")
        proc = subprocess.Popen(self.command(spec, node), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        (datadir / "geth.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not self._answers(node):
            if proc.poll() is not None:
                raise NetworkError(f"geth {name} exited with {proc.returncode}; see {datadir / 'geth.log'}")
            if time.monotonic() > deadline:
                self.stop_node(name)
                raise NetworkError(f"geth {name} did not answer within {timeout:.0f}s; see {datadir / 'geth.log'}")
            time.sleep(0.1)
        if node.role == "signer":
            self._catch_up(spec, node, deadline)
            self._wait_unlocked(node, deadline)
            self.call(node, "miner_start", [])
        return True

    def _wait_unlocked(self, node: NodeSpec, deadline: float) -> None:
        """geth unlocks the sealing key a moment after it answers; sealing before that fails
        and is not retried until new work arrives."""
        while time.monotonic() < deadline:
            try:
                wallets = self.call(node, "personal_listWallets", []) or []
            except NetworkError:
                time.sleep(2)  # no personal API: give the unlock its usual second
                return
            if any(w.get("status") == "Unlocked" for w in wallets):
                return
            time.sleep(0.1)
        raise NetworkError(f"geth {node.name} did not unlock its sealing key; see its geth.log")

    def _catch_up(self, spec: NetworkSpec, node: NodeSpec, deadline: float) -> None:
        """Wait until the node has a peer and the highest head among the running nodes."""
        others = [n for n in spec.nodes if n.name != node.name and not n.retired and self.pid(n.name)]
        if not others:
            return
        # geth starts a sync only every 10 s and may drop a peer after a failed one, then redials
        # static peers only after a back-off; and a sync that began while the node was starting
        # can stall with its peers still connected ("Syncing, discarded propagated block", then
        # nothing). While it lags: drop and dial its peers again — a new handshake with a peer
        # ahead of it starts a fresh sync.
        nudge_at = time.monotonic() + 15
        while time.monotonic() < deadline:
            target = max((self._head(n) or 0) for n in others)
            if (self._peer_count(node) or 0) >= 1 and (self._head(node) or 0) >= target:
                return
            if time.monotonic() > nudge_at:
                for other in others:
                    self._try_call(node, "admin_removePeer", [other.enode])
                    self._try_call(node, "admin_addPeer", [other.enode])
                nudge_at = time.monotonic() + 15
            time.sleep(0.2)
        raise NetworkError(f"geth {node.name} did not catch up with its peers (head {self._head(node)}, "
                           f"peers {self._peer_count(node)}, their heads "
                           f"{ {n.name: self._head(n) for n in others} }); the end of its geth.log:\n"
                           + self.log_tail(node.name))

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = (self.datadir(name) / "geth.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no geth.log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop_node(self, name: str) -> bool:
        pid = self.pid(name)
        pid_file = self.datadir(name) / "geth.pid"
        if pid is None:
            pid_file.unlink(missing_ok=True)
            return False
        stop_pid(pid)
        pid_file.unlink(missing_ok=True)
        return True

    def up(self, timeout: float = 120.0) -> NetworkSpec:
        """Start every node and wait until they are peered and blocks are being sealed."""
        spec = self.spec()
        live = [n for n in spec.nodes if not n.retired]
        # RPC nodes first, then signers one by one, each sealing only once it has caught up.
        for n in sorted(live, key=lambda n: n.role == "signer"):
            self.start_node(n.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            peered = all((self._peer_count(n) or 0) >= min(1, len(live) - 1) for n in live)
            if peered and (self._head(live[-1]) or 0) >= 2:
                # Signers that began sealing side by side can leave Clique's stall behind at once
                # (chain/clique_stall.py): a network that is up is one that goes on sealing.
                from .clique_stall import find_stall, heal

                stall = find_stall(self, window=max(4.0, 4.0 * spec.period))
                if stall is not None:
                    heal(self, stall)
                return spec
            time.sleep(0.5)
        raise NetworkError(f"the network did not start sealing within {timeout:.0f}s: {self.status()}")

    def down(self) -> list[str]:
        spec = self.spec()
        return [n.name for n in spec.nodes if self.stop_node(n.name)]

    def status(self) -> list[NodeStatus]:
        spec = self.spec()
        out = []
        for n in spec.nodes:
            if n.retired:
                continue
            running = self.pid(n.name) is not None
            out.append(NodeStatus(n.name, n.role, running, self._peer_count(n) if running else None,
                                  self._head(n) if running else None, n.address))
        return out

    def signers(self) -> list[str]:
        """The current signer set, as the chain's head says."""
        spec = self.spec()
        for n in spec.nodes:
            if not n.retired and self.pid(n.name):
                result = self.call(n, "clique_getSigners", [])
                if result is not None:
                    return [Web3.to_checksum_address(a) for a in result]
        raise NetworkError("no running node to ask for the signers")

    # --- changing the signer set (Clique's vote) ------------------------------------------------
    def add_signer(self, timeout: float = 120.0) -> NodeSpec:
        """Create and start a new signer node, then have the current signers vote it in."""
        spec = self.spec()
        current = self.signers()
        # A node created by an add that did not finish (its vote timed out) is voted in now.
        unfinished = [n for n in spec.nodes if n.role == "signer" and not n.retired and n.address not in current]
        if unfinished:
            node = unfinished[0]
        else:
            node = self._new_node(spec, f"signer-{sum(1 for n in spec.nodes if n.role == 'signer') + 1}", "signer")
            spec.nodes.append(node)
            self._save(spec)
            self._init_datadir(spec, node)
        for other in spec.nodes:
            if other is not node and not other.retired:
                self._write_peers(spec, other)  # read at their next start; the new node dials them now
        self.start_node(node.name)
        self._vote(spec, node.address, True, timeout)
        return node

    def remove_signer(self, name: str, timeout: float = 120.0) -> NodeSpec:
        """Have the other signers vote `name` out, then stop it for good."""
        spec = self.spec()
        node = spec.node(name)
        if node.role != "signer" or node.retired:
            raise NetworkError(f"{name} is not a current signer")
        self._vote(spec, node.address, False, timeout, exclude=name)
        self.stop_node(name)
        node.retired = True
        self._save(spec)
        for other in spec.nodes:
            if not other.retired:
                self._write_peers(spec, other)
        return node

    def _vote(self, spec: NetworkSpec, address: str, authorize: bool, timeout: float,
              exclude: str | None = None) -> None:
        current = self.signers()
        voters = [n for n in spec.nodes if n.role == "signer" and not n.retired and n.name != exclude
                  and n.address in current]
        if not all(self.pid(v.name) for v in voters):
            down = [v.name for v in voters if not self.pid(v.name)]
            raise NetworkError(f"every signer must be running to vote; down: {', '.join(down)}")
        for v in voters:
            self.call(v, "clique_propose", [address, authorize])
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                # Done when every running node's head says so, not just the first node asked.
                views = [self.call(n, "clique_getSigners", []) for n in spec.nodes
                         if not n.retired and self.pid(n.name)]
                if views and all(v is not None and (address.lower() in {a.lower() for a in v}) == authorize
                                 for v in views):
                    return
                time.sleep(0.5)
            raise NetworkError(f"the vote to {'add' if authorize else 'remove'} {address} did not pass "
                               f"within {timeout:.0f}s")
        finally:
            for v in voters:  # a passed proposal left standing would be cast again later
                if self.pid(v.name):
                    self.call(v, "clique_discard", [address])

    # --- JSON-RPC to a node ---------------------------------------------------------------------
    def call(self, node: NodeSpec, method: str, params: list):
        """One JSON-RPC call over the node's HTTP (RPC nodes) or IPC socket (signers)."""
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            if node.http_port is not None:
                reply = requests.post(f"http://127.0.0.1:{node.http_port}", json=payload, timeout=5).json()
            else:
                reply = ipc_call(self.datadir(node.name) / "geth.ipc", payload)
        except (OSError, requests.RequestException, ValueError):
            return None
        if "error" in reply:
            raise NetworkError(f"{node.name} {method}: {reply['error'].get('message')}")
        return reply.get("result")

    def _try_call(self, node: NodeSpec, method: str, params: list):
        try:
            return self.call(node, method, params)
        except NetworkError:
            return None

    def _answers(self, node: NodeSpec) -> bool:
        return self.call(node, "eth_blockNumber", []) is not None

    def _peer_count(self, node: NodeSpec) -> int | None:
        result = self.call(node, "net_peerCount", [])
        return int(result, 16) if result is not None else None

    def _head(self, node: NodeSpec) -> int | None:
        result = self.call(node, "eth_blockNumber", [])
        return int(result, 16) if result is not None else None
