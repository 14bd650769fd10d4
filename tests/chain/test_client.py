import threading

import pytest

from chain.client import ChainClient
from chain.deploy import deploy
from chain.errors import ChainTimeout, ChainUnreachable, TransactionReverted
from chain.keys import load_or_create
from chain.ledger import EnterpriseStatus, QiyemaLedger
from codes.uscc import chain_key, generate
from tests.conftest import free_port


@pytest.fixture
def ledger(evm, tmp_path):
    gov = load_or_create(tmp_path / "gov.eth")
    reg = load_or_create(tmp_path / "reg.eth")
    for a in (gov, reg):
        evm.fund(a.address, 10**20)
    record, _ = deploy(evm, gov, tmp_path / "deployments", grants={"REGISTRAR_ROLE": [reg.address],
                                                                     "NOTARY_ROLE": [reg.address]})
    return QiyemaLedger(evm, record), gov, reg


def test_revert_is_typed_with_decoded_custom_error(ledger):
    lg, _, reg = ledger
    key = chain_key("91350100M000100Y43")
    lg.client.wait(lg.send_register(reg, key))
    with pytest.raises(TransactionReverted) as info:
        lg.send_register(reg, key)
    assert info.value.error == "EnterpriseAlreadyRegistered"
    assert info.value.args_ == (key,)


def test_role_refusal_decodes_openzeppelin_error(ledger, tmp_path):
    lg, _, _ = ledger
    stranger = load_or_create(tmp_path / "stranger.eth")
    lg.client.fund(stranger.address, 10**18)
    with pytest.raises(TransactionReverted) as info:
        lg.send_register(stranger, chain_key("91350100M000100Y43"))
    assert info.value.error == "AccessControlUnauthorizedAccount"
    assert info.value.args_ == (stranger.address, lg.role("REGISTRAR_ROLE"))


def test_concurrent_senders_never_collide_on_nonces(ledger):
    lg, _, reg = ledger
    import random

    rng = random.Random(7)
    codes = list({generate(rng) for _ in range(40)})
    hashes: list[str] = []
    errors: list[Exception] = []

    def worker(part):
        try:
            for c in part:
                hashes.append(lg.send_register(reg, chain_key(c)))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(codes[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for h in hashes:
        lg.client.wait(h)
    assert lg.enterprise_count() == len(codes)
    assert set(lg.statuses([chain_key(c) for c in codes])) == {EnterpriseStatus.ACTIVE}


def test_events_are_read_from_a_block_range(ledger):
    lg, _, reg = ledger
    start = lg.client.block_number()
    keys = [chain_key(generate()) for _ in range(3)]
    for k in keys:
        lg.client.wait(lg.send_register(reg, k))
    logs = list(lg.client.events(lg.contract.events.EnterpriseRegistered, start, chunk=1))
    assert [log["args"]["usccHash"] for log in logs] == keys


def test_confirmations_wait_for_later_blocks(ledger):
    lg, _, reg = ledger
    tx = lg.send_register(reg, chain_key(generate()))
    with pytest.raises(ChainTimeout):
        lg.client.wait(tx, confirmations=3, timeout=0.3)  # py-evm mines only on demand
    lg.client.w3.testing.mine(2)
    assert lg.client.wait(tx, confirmations=3).status == 1


def test_a_write_beaten_in_the_same_block_is_explained_by_the_chain(ledger, tmp_path):
    # Two writers racing (an import's witnessing and the service's loop, on 1 s blocks): both
    # estimates pass, both transactions land in one block, the second fails. Replayed on the
    # state before the block it would pass; the chain after the block names why it failed.
    lg, gov, reg = ledger
    other = load_or_create(tmp_path / "other-registrar.eth")
    lg.client.fund(other.address, 10**18)
    lg.grant_role(gov, "REGISTRAR_ROLE", other.address)
    key, zero = chain_key(generate()), "0x" + "00" * 20
    tester = lg.client.w3.provider.ethereum_tester
    tester.disable_auto_mine_transactions()
    try:
        first, second = (lg.client.send(who, lg.contract.functions.register(key, zero), gas=300_000)
                         for who in (reg, other))
        tester.mine_blocks(1)
    finally:
        tester.enable_auto_mine_transactions()
    assert lg.client.wait(first).status == 1
    with pytest.raises(TransactionReverted) as info:
        lg.client.wait(second)
    assert info.value.error == "EnterpriseAlreadyRegistered"
    assert info.value.tx_hash == second


def test_unreachable_node_is_a_typed_error():
    client = ChainClient.from_url(f"http://127.0.0.1:{free_port()}", retries=1, request_timeout=0.5)
    with pytest.raises(ChainUnreachable):
        client.block_number()


def test_waiting_for_an_unknown_transaction_times_out(evm):
    with pytest.raises(ChainTimeout):
        evm.wait("0x" + "ab" * 32, timeout=0.2)
