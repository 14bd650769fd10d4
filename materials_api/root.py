"""The composition root: every domain service built once on a `Runtime`, and the background
work one instance per deployment runs. The app (`main.create_app`), the CLI and the benchmarks
all build their services here, so a service is wired the same way wherever it runs.

It sits above the domains (it imports them all) and below the entry points; `platform/` below
it knows no domain (see docs/architecture.md)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from materials_api.bank.access import AccessPolicy
from materials_api.bank.anchoring import Anchorer
from materials_api.bank.catalogue import Catalogue
from materials_api.bank.consent import ConsentService
from materials_api.bank.materials import MaterialService
from materials_api.codes.service import CodeService
from materials_api.codes.views import ScanViews
from materials_api.identity.accounts import AccountService
from materials_api.platform.background import BackgroundLoop
from materials_api.platform.config import Settings
from materials_api.platform.coordination import LeaderLease
from materials_api.platform.metrics import Metrics
from materials_api.platform.mirror import ChainMirror, MirrorHead, MirrorView
from materials_api.platform.outbox import Outbox
from materials_api.platform.runtime import Runtime
from materials_api.platform.scan_hours import ScanHours
from materials_api.platform.storage import sweep_spool
from materials_api.records.feed import RecordFeed
from materials_api.records.service import RecordService
from materials_api.registry.service import EnterpriseService

log = logging.getLogger("qiyema")


def witness_step(requeue_lost: Callable[[], int], deliver: Callable[[], object]) -> Callable[[], None]:
    """One background pass of one kind of chain write: the first pass that succeeds re-queues
    what a reset chain lost, every pass delivers what is due through the outbox."""
    state = {"requeued": False}

    def step() -> None:
        if not state["requeued"]:
            requeue_lost()
            state["requeued"] = True
        deliver()

    return step


def pending_enterprises(service: EnterpriseService, interval: float) -> Callable[[], None]:
    """At start every pending enterprise is ours to finish; later only rows untouched for a
    while, so a request's own fresh row is left to that request."""
    state = {"older_than": 0.0}

    def deliver() -> None:
        ids = service.pending_ids(older_than=state["older_than"])
        if ids:
            log.info("reconciled %d enterprise(s): %s", len(ids), service.reconcile(ids))
        state["older_than"] = max(interval, 2.0)

    return deliver


_NO_HEAD = MirrorHead(-1, "", 0, 0.0)


@dataclass
class Services:
    enterprises: EnterpriseService
    codes: CodeService
    materials: MaterialService
    records: RecordService
    record_feed: RecordFeed
    anchorer: Anchorer
    access: AccessPolicy
    consent: ConsentService
    views: ScanViews
    accounts: AccountService
    mirror: ChainMirror
    mirror_view: MirrorView
    scan_hours: ScanHours | None = None  # made by observe(): it reads the metrics' verdict counts

    @classmethod
    def build(cls, runtime: Runtime) -> "Services":
        settings, sessions, chain, clock = runtime.settings, runtime.sessions, runtime.chain, runtime.clock
        outbox = Outbox(sessions, chain.client)  # every chain write of every domain goes through it
        materials = MaterialService(sessions, chain, runtime.storage, Catalogue.load(settings.home),
                                    max_head_age=settings.chain_max_head_age, clock=clock)
        records = RecordService(sessions, chain, settings, outbox, clock=clock)
        access = AccessPolicy(sessions, clock)
        return cls(
            enterprises=EnterpriseService(sessions, chain, settings.register_batch_size, outbox),
            codes=CodeService(sessions, chain, settings, outbox, clock=clock),
            materials=materials,
            records=records,
            record_feed=RecordFeed(sessions, chain.tree_hash),
            anchorer=Anchorer(sessions, chain, batch_size=settings.anchor_batch_size,
                              max_wait=settings.anchor_max_wait, outbox=outbox),
            access=access,
            consent=ConsentService(sessions, access),
            views=ScanViews(sessions, records, access, materials),
            accounts=AccountService(sessions, session_ttl=settings.session_ttl,
                                    max_failures=settings.login_max_failures,
                                    lockout_seconds=settings.login_lockout_seconds, clock=clock),
            mirror=ChainMirror(sessions, chain.client, chain.deployment.address, chain.deployment.block_number,
                               confirmations=settings.confirmations, batch_blocks=settings.mirror_batch_blocks),
            mirror_view=MirrorView(sessions),
        )

    def observe(self, metrics: Metrics, runtime: Runtime) -> None:
        """What `/metrics` reads at scrape time, and what anchoring reports as it goes; the code
        verdicts it counts become the district page's scans per hour."""
        self.scan_hours = ScanHours(runtime.sessions, lambda: metrics.verdict_totals("code"), runtime.clock)
        metrics.watch_backlog("enterprises", self.enterprises.backlog)
        metrics.watch_backlog("records", self.records.backlog)
        metrics.watch_backlog("materials", self.anchorer.backlog)
        metrics.watch_head(runtime.chain.client.head_timestamp)
        self.anchorer.on_anchored = metrics.anchored
        self.views.on_lookup = metrics.cache_lookup
        metrics.watch_gauge("qiyema_chain_mirror_block", "The newest block the chain mirror has read (-1: none)",
                            lambda: (self.mirror_view.head() or _NO_HEAD).block_number)
        metrics.watch_gauge("qiyema_chain_mirror_synced_age_seconds",
                            "Seconds since the chain mirror was last at the node's head (-1: never)",
                            lambda: runtime.clock.time() - head.synced_at if (head := self.mirror_view.head()) and head.synced_at
                            else -1)

    def background_loops(self, settings: Settings, lease: LeaderLease | None = None) -> list[BackgroundLoop]:
        """The work one instance per deployment runs beside the API (the holder of the
        background lease): chain reconciliation, anchoring and record witnessing."""
        interval = settings.reconcile_interval
        return [
            BackgroundLoop("reconciler", witness_step(lambda: self.enterprises.requeue_lost() + self.codes.requeue_lost(),
                                                      pending_enterprises(self.enterprises, interval)),
                           interval, lease=lease),
            BackgroundLoop("anchorer", witness_step(self.anchorer.requeue_lost, self.anchorer.run_once),
                           min(0.5, settings.anchor_max_wait / 2), lease=lease),
            BackgroundLoop("records", witness_step(self.records.requeue_lost,
                                                   lambda: self.records.grant_writers() + self.records.reconcile()),
                           interval, lease=lease),
            BackgroundLoop("mirror", self.mirror.follow, settings.mirror_interval, lease=lease),
            # Sign-in failure counts a day old (and not locking anything) are forgotten; uploads a
            # dead process left in the spool are removed (at start, then every 10 minutes).
            BackgroundLoop("housekeeping", lambda: self.accounts.forget_failures(older_than=86400)
                           + sweep_spool(settings.spool_dir, settings.spool_max_age), 600, lease=lease),
        ]

    def requeue_lost(self) -> dict[str, int]:
        """What the chain no longer knows (a reset chain, a node that lost its state, a restore
        onto another chain), queued again: how many of each kind. Each background loop does
        this for its own kind when it starts; `qiyema restore` does it at once, to say so."""
        return {"enterprises": self.enterprises.requeue_lost(), "static-code keys": self.codes.requeue_lost(),
                "records": self.records.requeue_lost(), "anchor batches": self.anchorer.requeue_lost()}

    def unsettled(self) -> dict[str, int]:
        """What the chain must witness and does not yet, by kind: enterprises, records, anchor
        batches and material revocations (not the materials still filling their batch)."""
        return {"enterprises": self.enterprises.backlog()[0], "records": self.records.backlog()[0],
                "anchor batches and revocations": self.anchorer.unsettled()}

    def settle(self, settings: Settings, timeout: float) -> dict[str, int]:
        """Run the background loops' steps here until the chain witnesses everything it must
        (`unsettled`) or `timeout` passes; for commands that run with no service, like a restore.
        Returns what is still unsettled."""
        steps = [loop.step for loop in self.background_loops(settings)]
        deadline = time.monotonic() + timeout
        while True:
            for step in steps:
                step()
            left = self.unsettled()
            if not any(left.values()) or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def start_background(self, runtime: Runtime) -> "BackgroundWork":
        """Start the background loops; they work only while this instance holds the lease, so
        any number of instances may run them and exactly one is active."""
        self.materials.reconcile_storage()
        lease = LeaderLease(runtime.sessions, "background", ttl=runtime.settings.leader_lease_ttl, clock=runtime.clock)
        lease.try_acquire()
        lease.start()
        loops = self.background_loops(runtime.settings, lease)
        if self.scan_hours is not None:  # every instance writes down its own scans (no lease)
            loops.append(BackgroundLoop("scan-hours", self.scan_hours.record, runtime.settings.scan_hours_interval))
        for loop in loops:
            loop.start()
        return BackgroundWork(lease, loops)


@dataclass
class BackgroundWork:
    lease: LeaderLease
    loops: list[BackgroundLoop]

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        self.lease.stop()  # released: another instance takes over at once
