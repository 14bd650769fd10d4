"""Records over HTTP: issue and change the status of records (issuers of their category), list them
with verdicts, proofs; consent grants and the access log; inspections with their photos."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from datetime import time as dtime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from materials_api.api.deps import (
    AccessDep,
    BeforeRowId,
    ConsentDep,
    EnterprisesDep,
    MaterialsDep,
    RecordFeedDep,
    RecordsDep,
    RowId,
    RuntimeDep,
    SessionDep,
    UsccPath,
    UsccQuery,
    require,
    require_or_anonymous,
)
from materials_api.api.errors import ApiError
from materials_api.api.upload import multipart_body, receive_upload
from materials_api.bank.access import AccessPolicy
from materials_api.codes.views import record_item
from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from materials_api.platform.errors import Kind
from materials_api.platform.models import USCC_SCHEMA, ChainState
from materials_api.platform.sniff import UnsupportedContent, sniff
from materials_api.platform.spreadsheet import csv_text
from materials_api.platform.timefmt import utc_iso
from materials_api.records.kinds import CATEGORIES, KINDS
from materials_api.records.schemas import (
    ChangeResultPublic,
    ConsentCreate,
    RecordBatch,
    RecordBatchResult,
    RecordCreate,
    RecordStatusChange,
)
from materials_api.records.visibility import audience

router = APIRouter(prefix="/api/v1", tags=["records", "consent"])

WRITERS = (Role.ISSUER, Role.INSPECTOR, Role.BANK)


def _ts(d: date | None, end: bool) -> int | None:
    if d is None:
        return None
    return int(datetime.combine(d, dtime(23, 59, 59) if end else dtime(0, 0), tzinfo=timezone.utc).timestamp())


def _record_public(record, runtime, records, uscc: str, viewer: str = "enterprise", principal=None) -> dict:
    item = record_item(record, viewer, records.verify(record, uscc), principal)
    item["chain"] = {"state": record.chain_state, "tx_hash": record.tx_hash, "block_number": record.block_number}
    return item


INSPECTION = "inspection"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@router.get("/record-kinds", summary="Record kinds and categories (24 e-permits in 6 categories, …)")
def record_kinds(_: Annotated[Principal | None, Depends(require_or_anonymous(*Role))]):
    return [{"code": k.code, "name": k.name, "category": k.category, "category_name": CATEGORIES[k.category].name,
             "group": CATEGORIES[k.category].group, "public": k.public} for k in KINDS.values()]


@router.post("/records", status_code=201, summary="Issue a record (issuer of its category; inspectors: "
                                                 "inspections; banks: verification receipts)")
async def issue_record(body: RecordCreate, runtime: RuntimeDep, records: RecordsDep, access: AccessDep,
                       principal: Annotated[Principal, Depends(require(*WRITERS))]):
    if body.kind == INSPECTION:
        raise ApiError(Kind.INVALID, "inspection_needs_photo",
                       "an inspection is recorded with its photo: POST /api/v1/inspections")

    def issue():  # the database and the chain block: in a worker thread
        enterprise = access.acting_for(principal, body.uscc, "record_issue", read=False)
        record = records.issue(enterprise, body.kind, principal, number=body.number, title=body.title, data=body.data,
                               valid_from=_ts(body.valid_from, False), valid_until=_ts(body.valid_until, True))
        return record, _record_public(record, runtime, records, enterprise.uscc)

    record, item = await run_in_threadpool(issue)
    return JSONResponse(item, status_code=201 if record.chain_state == ChainState.CONFIRMED.value else 202)


@router.post("/records/batch", response_model=RecordBatchResult,
             summary="Apply up to 10,000 changes from an issuer's own system (the live feed); idempotent by "
                     "(issuer, source_id, source_version)",
             responses={403: {"description": "the key's organisation issues no records"}})
async def record_batch(body: RecordBatch, feed: RecordFeedDep,
                       principal: Annotated[Principal, Depends(require(*WRITERS))]):
    # Answered once every change is written ahead (durable); the chain witnesses them afterwards.
    results = await run_in_threadpool(feed.apply, principal, body.changes)
    counts = {"applied": 0, "unchanged": 0, "refused": 0}
    for r in results:
        counts[r.outcome if r.outcome in counts else "applied"] += 1
    return RecordBatchResult(**counts, items=[ChangeResultPublic(**r.as_dict()) for r in results])


@router.post("/records/{record_id}/status", summary="Suspend, revoke, restore or remove a record (its issuer)")
async def change_record_status(record_id: RowId, body: RecordStatusChange, runtime: RuntimeDep, records: RecordsDep,
                               access: AccessDep, principal: Annotated[Principal, Depends(require(*WRITERS))]):
    def change():
        record, enterprise = access.record(principal, record_id, "record_status", write=True)
        record = records.set_status(record, body.status, body.reason, principal)
        return _record_public(record, runtime, records, enterprise.uscc)

    return await run_in_threadpool(change)


@router.get("/records", summary="An enterprise's records with their verdicts")
def list_records(records: RecordsDep, access: AccessDep,
                 principal: Annotated[Principal, Depends(require(Role.ENTERPRISE, Role.INSPECTOR, Role.ISSUER))],
                 uscc: UsccQuery = None):
    enterprise = access.acting_for(principal, uscc, "records_list")
    viewer = audience(principal, enterprise.uscc)
    out = []
    for r in records.for_enterprise(enterprise.id):
        if principal.role is Role.ISSUER and r.category != principal.scope:
            continue
        item = record_item(r, viewer if principal.role is not Role.ISSUER else "enterprise",
                           records.verify(r, enterprise.uscc), principal)
        if item:
            out.append(item)
    return out


PUBLIC_FIELDS = ["id", "kind", "kind_name", "category_name", "number", "title", "valid_from", "valid_until", "status",
                 "verdict", "data", "proof"]


@router.get("/enterprises/{uscc}/public-records", summary="The 公示 part of an enterprise's records, as a file "
                                                          "(JSON or ?format=csv); anyone",
            responses={200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}})
def public_records(uscc: UsccPath, session: SessionDep, enterprises: EnterprisesDep, records: RecordsDep,
                   _: Annotated[Principal | None, Depends(require_or_anonymous(*Role))],
                   format: Literal["json", "csv"] = "json"):
    # What a counterparty downloads: the records anyone may see (public kinds, personal fields
    # masked), each with its verdict now and where its proof bundle is; the same for every caller.
    enterprise = enterprises.get(session, uscc)
    items = []
    for r in records.for_enterprise(enterprise.id):
        item = record_item(r, "public", records.verify(r, enterprise.uscc), None)
        if item is None:
            continue
        item["valid_from"] = _day(item["valid_from"])
        item["valid_until"] = _day(item["valid_until"])
        item["verdict"] = item["verdict"]["status"]
        items.append({k: item[k] for k in PUBLIC_FIELDS})
    name = f"{enterprise.uscc}-public-records"
    if format == "csv":
        text = csv_text(PUBLIC_FIELDS, ([json.dumps(i[k], ensure_ascii=False, sort_keys=True) if k == "data" else i[k]
                                         for k in PUBLIC_FIELDS] for i in items))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    body = {"uscc": enterprise.uscc, "name": enterprise.name, "status": enterprise.status,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "records": items}
    return JSONResponse(body, headers={"Content-Disposition": f'attachment; filename="{name}.json"'})


def _day(ts: int | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).date().isoformat() if ts else None


@router.get("/records/{record_id}/proof", summary="A record's proof bundle (public records: anyone)")
def record_proof(record_id: RowId, records: RecordsDep, access: AccessDep,
                 principal: Annotated[Principal | None, Depends(require_or_anonymous(*Role))]):
    record, enterprise = access.record(principal, record_id, "record_proof")
    return records.bundle(record, enterprise.uscc).to_json()


@router.post("/consents", status_code=201, summary="Grant a verifier organisation access to materials")
def create_consent(body: ConsentCreate, consent: ConsentDep, materials: MaterialsDep, access: AccessDep,
                   principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    enterprise = access.acting_for(principal, None, "consent_grant", read=False)
    grant = consent.grant(enterprise, principal, verifier_organisation=body.verifier_organisation,
                          material_ids=body.material_ids, material_types=body.material_types,
                          application_ids=body.application_ids, purpose=body.purpose,
                          expires_at=int(body.expires_at.timestamp()), known_types=set(materials.catalogue.types))
    return _grant_public(grant, access)


@router.get("/consents", summary="The enterprise's grants")
def list_consents(consent: ConsentDep, access: AccessDep,
                  principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    enterprise = access.acting_for(principal, None, "consent_list")
    return [_grant_public(g, access) for g in consent.list(enterprise)]


@router.post("/consents/{grant_id}/revoke", summary="Revoke a grant; the next read is refused")
def revoke_consent(grant_id: RowId, consent: ConsentDep, access: AccessDep,
                   principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    enterprise = access.acting_for(principal, None, "grant_revoke", read=False)
    return _grant_public(consent.revoke(enterprise, principal, grant_id), access)


@router.get("/access-log", summary="Who read the enterprise's non-public data (JSON pages, newest first; "
                                    "?format=csv: all of it)",
            responses={200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}})
def access_log(access: AccessDep, principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))],
               format: Literal["json", "csv"] = "json", before: BeforeRowId = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 500):
    # A page of JSON at a time (the next page: ?before=<the last entry's id>); the CSV export is
    # the whole log, so an enterprise can always see every read of its data.
    enterprise = access.acting_for(principal, None, "access_log")
    entries = access.entries(enterprise, limit=None if format == "csv" else limit, before=before)
    rows = [{"id": e.id, "at": utc_iso(e.created_at), "organisation": e.organisation, "role": e.role,
             "action": e.action, "target": e.target, "purpose": e.purpose, "outcome": e.outcome, "reason": e.reason}
            for e in entries]
    if format == "csv":
        header = ["at", "organisation", "role", "action", "target", "purpose", "outcome", "reason"]
        return Response(csv_text(header, ([r[k] for k in header] for r in rows)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": "attachment; filename=access-log.csv"})
    return rows


@router.get("/consents/received", summary="The active grants made to the caller's organisation, with the "
                                          "materials each covers now (banks)")
def received_consents(consent: ConsentDep, materials: MaterialsDep,
                      principal: Annotated[Principal, Depends(require(Role.BANK))]):
    folders = materials.catalogue.types
    return [{"grant_id": grant.id, "uscc": enterprise.uscc, "enterprise_name": enterprise.name, "purpose": grant.purpose,
             "expires_at": grant.expires_at,
             "materials": [{"id": m.id, "title": m.title, "file_name": m.file_name, "folder": m.type_code,
                            "folder_name": folders[m.type_code].name if m.type_code in folders else m.type_code,
                            "sha256": m.sha256, "version": m.version, "valid_until": m.valid_until,
                            "content": f"/api/v1/materials/{m.id}/content", "proof": f"/api/v1/materials/{m.id}/proof"}
                           for m in covered]}
            for grant, enterprise, covered in consent.received(principal)]


def _grant_public(grant, access: AccessPolicy) -> dict:
    return {"id": grant.id, "verifier_organisation": grant.verifier_organisation,
            "material_ids": json.loads(grant.material_ids), "material_types": json.loads(grant.material_types),
            "application_ids": json.loads(grant.application_ids or "[]"),
            "purpose": grant.purpose, "expires_at": grant.expires_at,
            "revoked": grant.revoked_at is not None, "active": access.grant_active(grant)}


INSPECTION_RESULTS = {"passed": "未发现问题", "rectify": "责令整改", "case_opened": "立案调查"}


@router.post("/inspections", status_code=201,
             summary="Record an on-site inspection: multipart uscc, result, findings and a photo (inspectors)",
             openapi_extra=multipart_body({
                 "uscc": USCC_SCHEMA | {"description": "the inspected enterprise"},
                 "result": {"enum": list(INSPECTION_RESULTS), "description": "; ".join(
                     f"{k}: {v}" for k, v in INSPECTION_RESULTS.items())},
                 "findings": {"minLength": 1, "description": "what the inspector found"}},
                 ("file", "uscc", "result", "findings")))
async def record_inspection(request: Request, runtime: RuntimeDep, records: RecordsDep, access: AccessDep,
                            principal: Annotated[Principal, Depends(require(Role.INSPECTOR))]):
    upload, file_name, fields = await receive_upload(request, runtime.settings.spool_dir, 32 * 1024 * 1024,
                                                     durable=not runtime.storage.seals)
    try:
        enterprise = await run_in_threadpool(access.acting_for, principal, fields.get("uscc"), "inspection_record",
                                             read=False)
        findings = fields.get("findings", "").strip()
        if not findings:
            raise ApiError(Kind.INVALID, "findings_missing", "describe the findings")
        if fields.get("result") not in INSPECTION_RESULTS:
            raise ApiError(Kind.INVALID, "result_invalid", f"result is one of {', '.join(INSPECTION_RESULTS)}")
        try:
            photo_type = sniff(upload.head, file_name)
        except UnsupportedContent:  # a script, an executable: not a photo either
            photo_type = None
        if photo_type not in ("image/jpeg", "image/png"):
            raise ApiError(Kind.UNSUPPORTED, "photo_not_image", "the photo must be a JPEG or PNG picture")
        # The photo is stored first (content-addressed: a retry stores nothing twice); the record,
        # carrying the photo's hash, is then written ahead and witnessed on chain.
        await run_in_threadpool(runtime.storage.put_file, "inspections", upload.sha256, upload.path, photo_type)
    except BaseException:
        upload.discard()
        raise
    data = {"result": fields["result"], "result_name": INSPECTION_RESULTS[fields["result"]], "findings": findings,
            "photo_sha256": upload.sha256, "photo_type": photo_type}

    def issue():
        record = records.issue(enterprise, "inspection", principal, number=None, title="现场检查记录", data=data,
                               valid_from=None, valid_until=None)
        return record, _record_public(record, runtime, records, enterprise.uscc)

    record, item = await run_in_threadpool(issue)
    return JSONResponse(item, status_code=201 if record.chain_state == ChainState.CONFIRMED.value else 202)


@router.get("/inspections/{record_id}/photo", summary="An inspection's photo (inspectors; the inspected enterprise)",
            response_class=StreamingResponse, responses={200: {"description": "the photo as witnessed", "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
def inspection_photo(record_id: RowId, runtime: RuntimeDep, access: AccessDep,
                     principal: Annotated[Principal, Depends(require(Role.INSPECTOR, Role.ENTERPRISE))]):
    record, _ = access.record(principal, record_id, "inspection_photo", kind="inspection")
    digest = json.loads(record.data).get("photo_sha256")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ApiError(Kind.INVALID, "no_photo", "this inspection has no photo")
    # The bytes are named by their hash, which the anchored record carries: what is served is
    # exactly what was witnessed. Its type is read from the bytes, never from the record's data
    # (which a writer chose), and only a picture is served, as a picture.
    stream = runtime.storage.open("inspections", digest)
    head = next(stream, b"")
    media_type = ("image/jpeg" if head.startswith(b"\xff\xd8\xff")
                  else "image/png" if head.startswith(b"\x89PNG\r\n\x1a\n") else None)
    if media_type is None:
        stream.close()
        raise ApiError(Kind.UNSUPPORTED, "photo_not_image", "the stored photo is not a JPEG or PNG picture")

    def body():
        yield head
        yield from stream

    extension = "jpg" if media_type == "image/jpeg" else "png"
    return StreamingResponse(body(), media_type=media_type, headers={
        "Content-Disposition": f'inline; filename="inspection-{record_id}.{extension}"'})
