"""Crash-test worker: uploads, confirms and anchors three materials through the services.

    python -m tests.crash_worker HOME RPC_URL
With QIYEMA_FAILPOINT set it dies by SIGKILL at that point. Run again without it, it is the
client retrying: each step is idempotent, so it finishes the work."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import select

from materials_api.bank.anchoring import Anchorer
from materials_api.bank.catalogue import Catalogue
from materials_api.bank.materials import MaterialService
from materials_api.bank.models import MaterialState
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime
from materials_api.platform.storage import Spool
from materials_api.registry.models import Enterprise
from materials_api.registry.service import EnterpriseError, EnterpriseService

USCC = "91350100M000100Y43"
CONTENTS = [b"%PDF-1.7 " + f"material {i} ".encode() * 200 for i in range(3)]


def main(home: str, rpc: str) -> None:
    settings = Settings(home=Path(home), chain_rpc_url=rpc)
    runtime = Runtime.open(settings)
    enterprises = EnterpriseService(runtime.sessions, runtime.chain)
    try:
        enterprises.register(USCC, "福建示例科技有限公司")
    except EnterpriseError as exc:
        assert exc.code == "enterprise_exists"
    with runtime.sessions() as s:
        enterprise = s.scalar(select(Enterprise).where(Enterprise.uscc == USCC))
    service = MaterialService(runtime.sessions, runtime.chain, runtime.storage, Catalogue())
    anchorer = Anchorer(runtime.sessions, runtime.chain, batch_size=16, max_wait=0)
    for i, content in enumerate(CONTENTS):
        spool = Spool(settings.spool_dir, 10**8)
        spool.write(content)
        material = service.ingest(enterprise, spool.finish(), file_name=f"租赁合同{i}.pdf", title=None,
                                  type_code="lease_contract", valid_until=None, actor_key_id=None)
        if material.state == MaterialState.UPLOADED.value:
            service.confirm(material, None)
    anchorer.run_once(force=True)
    runtime.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
