"""The chain outbox on a real (in-process) chain: the window, SENT before waiting, a write the
chain already holds counted as delivered, a refusal told to its delivery, receipts handed on."""

from functools import partial

import pytest
from sqlalchemy import select

from chain.errors import TransactionReverted
from codes.uscc import chain_key
from materials_api.platform.outbox import Delivery, Outbox, Table
from materials_api.registry.models import Enterprise

USCCS = ["91350100M000100Y43", "91110108MA01ABCD1E"]


@pytest.fixture
def rows(runtime):
    with runtime.sessions.begin() as s:
        for u in USCCS:
            s.add(Enterprise(uscc=u, name=u, uscc_key=chain_key(u)))
    with runtime.sessions() as s:
        return list(s.scalars(select(Enterprise).order_by(Enterprise.id)))


def state(runtime):
    with runtime.sessions() as s:
        return {e.uscc: (e.chain_state, e.tx_hash) for e in s.scalars(select(Enterprise))}


def test_each_write_is_marked_sent_with_its_hash_and_confirmed_from_its_own_receipt(runtime, rows):
    ledger, registrar = runtime.chain.ledger, runtime.chain.registrar
    receipts = {}
    sent_when_confirmed = {}

    def confirm(row, receipt):
        sent_when_confirmed[row.uscc] = state(runtime)[row.uscc]
        receipts[row.uscc] = receipt
        return 1

    outbox = Outbox(runtime.sessions, runtime.chain.client, in_flight=2)
    done = outbox.deliver("register", Table(Enterprise), [
        Delivery([r.id], partial(ledger.send_register, registrar, r.uscc_key), partial(confirm, r)) for r in rows])
    assert done == 2
    for r in rows:
        state_then, tx_hash = sent_when_confirmed[r.uscc]
        assert state_then == "sent" and tx_hash == receipts[r.uscc].tx_hash  # written before the wait
        assert receipts[r.uscc].block_number > 0 and ledger.enterprise(r.uscc_key).status.name == "ACTIVE"


def test_a_write_the_chain_holds_already_is_delivered_without_a_transaction(runtime, rows):
    ledger, registrar = runtime.chain.ledger, runtime.chain.registrar
    ledger.client.wait(ledger.send_register(registrar, rows[0].uscc_key))
    seen = []
    outbox = Outbox(runtime.sessions, runtime.chain.client)
    outbox.deliver("register", Table(Enterprise), [Delivery(
        [rows[0].id], partial(ledger.send_register, registrar, rows[0].uscc_key), lambda receipt: seen.append(receipt) or 1,
        already=("EnterpriseAlreadyRegistered",))])
    assert seen == [None] and state(runtime)[rows[0].uscc] == ("pending", None)  # nothing sent, nothing marked


def test_a_refusal_goes_to_its_delivery_and_the_others_go_on(runtime, rows):
    ledger, registrar = runtime.chain.ledger, runtime.chain.registrar
    refused, confirmed = [], []
    stranger = runtime.chain.notary  # holds no registrar role: the chain refuses its writes
    deliveries = [
        Delivery([rows[0].id], partial(ledger.send_register, stranger, rows[0].uscc_key), lambda r: 1,
                 refused=refused.append),
        Delivery([rows[1].id], partial(ledger.send_register, registrar, rows[1].uscc_key),
                 lambda r: confirmed.append(r.tx_hash) or 1),
    ]
    assert Outbox(runtime.sessions, runtime.chain.client).deliver("register", Table(Enterprise), deliveries) == 1
    assert len(refused) == 1 and refused[0].error == "AccessControlUnauthorizedAccount"
    assert state(runtime)[rows[0].uscc] == ("pending", None) and state(runtime)[rows[1].uscc] == ("sent", confirmed[0])
    with pytest.raises(TransactionReverted):  # without a `refused`, the refusal is the caller's
        Outbox(runtime.sessions, runtime.chain.client).deliver("register", None, [
            Delivery([rows[0].id], partial(ledger.send_register, stranger, rows[0].uscc_key), lambda r: 1)])


def test_no_service_talks_to_web3_or_contract_functions_directly():
    """Every chain write goes through the ledger (and the outbox); services hold no w3."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "materials_api"
    offenders = [str(p) for p in root.rglob("*.py") if ".w3." in p.read_text() or "contract.functions" in p.read_text()]
    assert not offenders, offenders
