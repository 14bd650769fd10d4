"""No implicit redeploy: a build whose contract differs from the one on chain refuses to start
until the operator upgrades, and the upgrade appends to the trust list (the old deployment stays,
so evidence anchored there keeps naming a pinned witness)."""

from __future__ import annotations

import hashlib

import pytest

from chain.client import ChainClient
from chain.deploy import CodeDiffers
from chain.material_verify import verify_material
from chain.proof import ProofBundle
from materials_api.platform.runtime import Runtime
from tests.attacks.conftest import deposit, keys_for

LEASE = b"%PDF-1.7\n" + "厂房租赁合同 ".encode() * 300

pytestmark = pytest.mark.anvil


def test_a_changed_contract_needs_an_explicit_upgrade_which_appends_to_the_trust_list(service):
    api, runtime = service
    got = deposit(api, runtime, keys_for(runtime), LEASE)  # anchored on the first deployment
    old = runtime.chain.deployment
    client = runtime.chain.client
    code = client.request("eth_getCode", [old.address, "latest"])
    client.request("anvil_setCode", [old.address, code + "00"])  # the chain now runs other code than this build
    with pytest.raises(CodeDiffers) as refused:
        Runtime.open(runtime.settings, client=ChainClient.from_url(runtime.settings.chain_rpc_url))
    assert "qiyema chain upgrade" in str(refused.value)
    assert len(runtime.chain.trust_list.deployments) == 1
    upgraded = Runtime.open(runtime.settings, client=ChainClient.from_url(runtime.settings.chain_rpc_url),
                            upgrade=True)
    try:
        new = upgraded.chain.deployment
        assert new.address != old.address
        trust = upgraded.chain.trust
        assert trust.trusts(old.chain_id, old.address) and trust.trusts(new.chain_id, new.address)
        assert [d.address.lower() for d in upgraded.chain.trust_list.deployments] == [old.address.lower(),
                                                                                       new.address.lower()]
        upgraded.chain.trust_list.check(upgraded.chain.governor.address)  # signed again by the governor
        # The material is witnessed again on the new deployment; withdrawn later, its revocation
        # reaches the old deployment too, so the bundle made before the upgrade says so.
        from materials_api.bank.models import Material
        from materials_api.root import Services

        services = Services.build(upgraded)
        assert services.anchorer.requeue_lost() == 1
        services.anchorer.run_once(force=True)
        with upgraded.sessions() as s:
            material = s.get(Material, got["id"])
        services.materials.withdraw(material)
        services.anchorer.run_once(force=True)
        old_bundle = ProofBundle.from_json(got["bundle"])
        assert old_bundle.anchor.contract.lower() == old.address.lower()
        verdict = verify_material(old_bundle, content_sha256=hashlib.sha256(LEASE).digest(), client=upgraded.chain.client,
                                  trust=upgraded.chain.trust)
        assert verdict.status.value == "INVALID" and verdict.check("status").reason == "revoked", verdict.as_dict()
    finally:
        upgraded.close()
