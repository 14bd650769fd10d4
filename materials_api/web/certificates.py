"""存证证书: a record's proof as a page a person can read, show and print (PDF from the browser's
print), instead of the proof bundle's JSON. Who holds it (the company and the record), what was
fingerprinted, when and in which block it was anchored, the verdict now in words, a QR code back
to this page, and the bundle itself for a machine (`<number>.proof.json`, what `qiyema records
verify` and the front door read). The same access as the bundle: public records for anyone,
others for those who may see them; anything else is "not found", as a page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from chain.errors import ChainError
from materials_api.api.deps import AccessDep, RecordsDep, RuntimeDep, session_principal
from materials_api.bank.access import AccessDenied
from materials_api.codes.views import record_item
from materials_api.platform.errors import ServiceError
from materials_api.platform.timefmt import calendar_day, beijing_time
from materials_api.records.visibility import audience
from materials_api.web import labels
from materials_api.web.render import page

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/certificates/records/{record_id}", response_class=HTMLResponse)
def record_certificate(record_id: int, request: Request, records: RecordsDep, access: AccessDep, runtime: RuntimeDep):
    principal = session_principal(request)
    try:
        record, enterprise = access.record(principal, record_id, "record_proof")
        bundle = records.bundle(record, enterprise.uscc)
    except (AccessDenied, ServiceError):
        return page("certificate_missing.html", 404, title="没有找到存证证书")
    verdict = records.verify(record, enterprise.uscc)
    item = record_item(record, audience(principal, enterprise.uscc), verdict, principal)
    if item is None:  # the access check passed, so the view shows it; never a crash if not
        return page("certificate_missing.html", 404, title="没有找到存证证书")
    try:
        anchored_at = beijing_time(runtime.chain.client.block(bundle.anchor.block_number)["timestamp"])
    except (ChainError, KeyError, TypeError):
        anchored_at = "暂时无法读取（区块链暂不可用）"
    headline, next_step, colour = labels.headline(verdict.as_dict())
    address = f"{runtime.settings.public_url.rstrip('/')}/certificates/records/{record.id}"
    from codes.render import render_svg

    return page(
        "certificate.html", title=f"存证证书 · {item['kind_name']}", enterprise=enterprise, item=item,
        state=labels.RECORD.get(record.status, (record.status, "SKIPPED"))[0], bundle=bundle,
        validity=(f"{calendar_day(record.valid_from)} 至 " if record.valid_from else "至 ") + calendar_day(record.valid_until),
        anchored_at=anchored_at, headline=headline, next_step=next_step, colour=colour, checks=verdict.checks,
        checked_at=beijing_time(runtime.clock.time()), qr=render_svg(address, enterprise.name, enterprise.uscc),
        bundle_name=f"{record.number or record.id}.proof.json", bundle_url=f"/api/v1/records/{record.id}/proof",
        address=address)
