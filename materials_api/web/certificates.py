"""存证证书: a record's or a material's proof as a page a person can read, show and print (PDF from the browser's
print), instead of the proof bundle's JSON. Who holds it (the company and the record), what was
fingerprinted, when and in which block it was anchored, the verdict now in words, a QR code back
to this page, and the bundle itself for a machine (`<number>.proof.json`, what `qiyema records
verify` and the front door read). The same access as the bundle: public records for anyone,
other records and materials for those signed in who may read them; anything else is "not
found", as a page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from chain.errors import ChainError
from codes.render import render_svg
from materials_api.api.deps import AccessDep, MaterialsDep, RecordsDep, RuntimeDep, session_principal
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
    subject = [("证照", item["kind_name"] + (f"（编号 {record.number}）" if record.number else "")),
               ("发证类别", item["category_name"]),
               ("有效期", (f"{calendar_day(record.valid_from)} 至 " if record.valid_from else "至 ")
                + calendar_day(record.valid_until)),
               ("登记状态", labels.RECORD.get(record.status, (record.status, "SKIPPED"))[0])]
    return _certificate(runtime, f"/certificates/records/{record.id}", item["kind_name"], enterprise, subject, bundle,
                        verdict, f"{record.number or record.id}.proof.json", f"/api/v1/records/{record.id}/proof")


@router.get("/certificates/materials/{material_id}", response_class=HTMLResponse)
def material_certificate(material_id: int, request: Request, materials: MaterialsDep, access: AccessDep,
                         runtime: RuntimeDep):
    """A material's certificate, for those who may read its proof (the company, the service
    window, a bank it consented to): signed in, or asked to sign in first."""
    principal = session_principal(request)
    if principal is None:
        return RedirectResponse(f"/login?next=/certificates/materials/{material_id}", status_code=303)
    try:
        material, enterprise = access.material(principal, material_id, "material_proof")
        bundle = materials.bundle(material)
    except (AccessDenied, ServiceError):
        return page("certificate_missing.html", 404, title="没有找到存证证书")
    verdict = materials.verify(bundle, bytes.fromhex(material.sha256))
    folder = materials.catalogue.types.get(material.type_code)
    subject = [("材料", material.title), ("分类", folder.name if folder else material.type_code),
               ("版本", f"第 {material.version} 版"), ("有效期", "至 " + calendar_day(material.valid_until)),
               ("存入方式", "窗口核对原件后代为存入" if material.label == "original_checked" else "企业自行上传并确认"),
               ("状态", labels.MATERIAL.get(material.state, material.state))]
    return _certificate(runtime, f"/certificates/materials/{material.id}", material.title, enterprise, subject, bundle,
                        verdict, f"{material.file_name}.proof.json", f"/api/v1/materials/{material.id}/proof")


def _certificate(runtime, path: str, what: str, enterprise, subject: list[tuple[str, str]], bundle, verdict,
                 bundle_name: str, bundle_url: str) -> HTMLResponse:
    try:
        anchored_at = beijing_time(runtime.chain.client.block(bundle.anchor.block_number)["timestamp"])
    except (ChainError, KeyError, TypeError):
        anchored_at = "暂时无法读取（区块链暂不可用）"
    headline, next_step, colour = labels.headline(verdict.as_dict())
    address = runtime.settings.public_url.rstrip("/") + path
    return page(
        "certificate.html", title=f"存证证书 · {what}", enterprise=enterprise, subject=subject, bundle=bundle,
        anchored_at=anchored_at, headline=headline, next_step=next_step, colour=colour, checks=verdict.checks,
        checked_at=beijing_time(runtime.clock.time()), qr=render_svg(address, enterprise.name, enterprise.uscc),
        bundle_name=bundle_name, bundle_url=bundle_url, address=address)
