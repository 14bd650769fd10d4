"""No implicit redeploy: a build whose contract differs from the one on chain refuses to start
until the operator upgrades, and the upgrade appends to the trust list (the old deployment stays,
so evidence anchored there keeps naming a pinned witness)."""

from __future__ import annotations

import pytest

from chain.client import ChainClient
from chain.deploy import CodeDiffers
from materials_api.platform.runtime import Runtime

pytestmark = pytest.mark.anvil


def test_a_changed_contract_needs_an_explicit_upgrade_which_appends_to_the_trust_list(service):
    api, runtime = service
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
    finally:
        upgraded.close()
