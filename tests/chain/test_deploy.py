import json

from chain.client import ChainClient
from chain.deploy import code_status, deploy, load_record
from chain.keys import load_or_create


def test_deploy_is_idempotent_and_status_matches_build(evm, tmp_path):
    gov = load_or_create(tmp_path / "gov.eth")
    evm.fund(gov.address, 10**20)
    first, created = deploy(evm, gov, tmp_path)
    assert created
    again, created_again = deploy(evm, gov, tmp_path)
    assert not created_again and again == first
    status = code_status(evm, tmp_path)
    assert status.matches_build and status.onchain_code_hash == first.code_hash
    saved = json.loads((tmp_path / f"{evm.chain_id}.json").read_text())
    assert saved["address"] == first.address and saved["block_number"] == first.block_number


def test_a_reset_chain_gets_a_fresh_deployment(evm, tmp_path):
    gov = load_or_create(tmp_path / "gov.eth")
    evm.fund(gov.address, 10**20)
    deploy(evm, gov, tmp_path)
    fresh = ChainClient.in_process()
    # Same chain id, same key, empty state: the recorded address holds no code any more.
    fresh.fund(gov.address, 10**20)
    fresh._chain_id = evm.chain_id
    assert not code_status(fresh, tmp_path).deployed
    record, created = deploy(fresh, gov, tmp_path)
    assert created and load_record(tmp_path, evm.chain_id) == record


def test_grants_are_made_once(evm, tmp_path):
    gov = load_or_create(tmp_path / "gov.eth")
    reg = load_or_create(tmp_path / "reg.eth")
    evm.fund(gov.address, 10**20)
    deploy(evm, gov, tmp_path, grants={"REGISTRAR_ROLE": [reg.address]})
    block = evm.block_number()
    deploy(evm, gov, tmp_path, grants={"REGISTRAR_ROLE": [reg.address]})
    assert evm.block_number() == block  # nothing sent the second time
