"""The material bank over HTTP: upload, confirm, version, withdraw, revoke, download, prove and
verify materials; folders, service items and applications. Every read goes through the access policy."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from datetime import time as dtime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from chain.proof import ProofBundle, ProofError
from materials_api.api.deps import (
    AccessDep,
    MaterialsDep,
    MetricsDep,
    RowId,
    RuntimeDep,
    UsccQuery,
    require,
    require_or_anonymous,
)
from materials_api.api.errors import ApiError
from materials_api.api.upload import MAX_FIELD, multipart_body, receive_upload
from materials_api.bank.models import Material
from materials_api.bank.schemas import (
    MAX_BATCH_VERIFY,
    ApplicationCreate,
    ApplicationItemPublic,
    ApplicationPublic,
    ConfirmBody,
    FolderPublic,
    MaterialList,
    MaterialPublic,
    RevokeBody,
    VerifyBatchBody,
    VerifyBatchPublic,
    VerifyHashBody,
)
from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from materials_api.platform.errors import Kind
from materials_api.platform.models import USCC_SCHEMA
from materials_api.platform.timefmt import utc_iso
from materials_api.registry.models import Enterprise

router = APIRouter(prefix="/api/v1", tags=["materials"])

OWNERS = (Role.ENTERPRISE, Role.CLERK)


def _public(m: Material, enterprise: Enterprise, service) -> MaterialPublic:
    t = service.catalogue.types.get(m.type_code)
    return MaterialPublic(
        id=m.id, uscc=enterprise.uscc, folder=m.type_code, folder_name=t.name if t else m.type_code,
        classified=m.classified, title=m.title, file_name=m.file_name, content_type=m.content_type, size=m.size,
        sha256=m.sha256, sm3=m.sm3, version=m.version, lineage_id=m.lineage_id or m.id, supersedes_id=m.supersedes_id,
        state=m.state, label=m.label, valid_until=m.valid_until, reuse_count=m.reuse_count,
        anchored=m.leaf is not None and m.state == "anchored", revocation_state=m.revocation_state,
        proof_replaced_at=int(m.proof_replaced_at.timestamp()) if m.proof_replaced_at else None)


def _valid_until(text: str | None) -> int | None:
    if not text:
        return None
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise ApiError(Kind.INVALID, "valid_until_format", "valid_until is a date: YYYY-MM-DD") from None
    return int(datetime.combine(d, dtime(23, 59, 59), tzinfo=timezone.utc).timestamp())


@router.get("/material-types", response_model=list[FolderPublic], summary="The folders of the material bank")
def material_types(service: MaterialsDep, _: Annotated[Principal | None, Depends(require_or_anonymous(*Role))]):
    return [FolderPublic(code=t.code, name=t.name, count=0) for t in service.catalogue.types.values()]


FILED_FIELDS = {
    "title": {"description": "the material's title (kept to 200 characters); default: the file name"},
    "valid_until": {"format": "date", "description": "the last day the material is valid, YYYY-MM-DD"},
}


@router.post("/materials", status_code=201, response_model=MaterialPublic,
             summary="Upload a material (multipart: file, folder?, title?, valid_until?, uscc for clerks)",
             responses={200: {"model": MaterialPublic, "description": "these bytes were already in this folder "
                                                                     "(a retried upload): that material; nothing stored"}},
             openapi_extra=multipart_body(FILED_FIELDS | {
                 "folder": {"description": "a folder code (GET /api/v1/material-types); default: chosen from "
                                           "the file name"},
                 "uscc": USCC_SCHEMA | {"description": "clerks: the enterprise the material is filed for"}}))
async def upload_material(request: Request, runtime: RuntimeDep, service: MaterialsDep, access: AccessDep,
                          principal: Annotated[Principal, Depends(require(*OWNERS))]):
    def store(upload, file_name, fields):
        # Storing (fsync, object store, database) blocks: in the worker thread of the fsync.
        enterprise = access.acting_for(principal, fields.get("uscc"), "material_file", read=False)
        valid_until = _valid_until(fields.get("valid_until"))
        return enterprise, service.ingest(
            enterprise, upload, file_name=file_name, title=fields.get("title") or None,
            type_code=fields.get("folder") or None, valid_until=valid_until, actor_key_id=principal.key_id,
            filed_by_clerk=principal.role is Role.CLERK)

    (enterprise, material), _, _ = await receive_upload(request, runtime.settings.spool_dir,
                                                        runtime.settings.max_upload_bytes, then=store,
                                                        durable=not runtime.storage.seals)
    body = (await run_in_threadpool(_public, material, enterprise, service)).model_dump()
    # 200: these bytes were already in this folder (a retried upload); nothing new was stored.
    return JSONResponse(body, status_code=200 if getattr(material, "already_present", False) else 201)


@router.get("/materials", response_model=MaterialList, summary="An enterprise's materials by folder")
def list_materials(service: MaterialsDep, access: AccessDep,
                   principal: Annotated[Principal, Depends(require(*OWNERS))],
                   uscc: UsccQuery = None, folder: str | None = None, state: str | None = None):
    enterprise = access.acting_for(principal, uscc, "materials_list")
    if folder and folder not in service.catalogue.types:
        raise ApiError(Kind.INVALID, "unknown_folder", f"no material folder {folder!r}")
    counts = service.folder_counts(enterprise)
    return MaterialList(
        folders=[FolderPublic(code=t.code, name=t.name, count=counts.get(t.code, 0))
                 for t in service.catalogue.types.values()],
        items=[_public(m, enterprise, service) for m in service.list(enterprise, folder, state)])


@router.get("/materials/{material_id}", response_model=MaterialPublic, summary="One material")
def get_material(material_id: RowId, service: MaterialsDep, access: AccessDep,
                 principal: Annotated[Principal, Depends(require(*OWNERS))]):
    material, enterprise = access.material(principal, material_id, "material_read")
    return _public(material, enterprise, service)


@router.post("/materials/{material_id}/confirm", response_model=MaterialPublic,
             summary="Confirm a material: it gets the self-attested label and is queued for anchoring")
def confirm_material(material_id: RowId, service: MaterialsDep, access: AccessDep,
                     principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))],
                     body: ConfirmBody | None = None):
    material, enterprise = access.material(principal, material_id, "material_confirm")
    folder = body.folder if body else None
    return _public(service.confirm(material, principal.key_id, folder=folder), enterprise, service)


@router.post("/materials/{material_id}/versions", status_code=201, response_model=MaterialPublic,
             summary="Upload a new version of a material (same folder)", openapi_extra=multipart_body(FILED_FIELDS))
async def new_version(material_id: RowId, request: Request, runtime: RuntimeDep, service: MaterialsDep,
                      access: AccessDep, principal: Annotated[Principal, Depends(require(*OWNERS))]):
    # Refused before the body is read: nothing is spooled, the connection closes.
    material, enterprise = await run_in_threadpool(access.material, principal, material_id, "material_version")
    if material.state in ("withdrawn", "revoked", "superseded"):
        raise ApiError(Kind.CONFLICT, "not_current", f"material {material_id} is {material.state}; version its successor")
    def store(upload, file_name, fields):
        return service.ingest(enterprise, upload, file_name=file_name, title=fields.get("title") or material.title,
                              type_code=None, valid_until=_valid_until(fields.get("valid_until")),
                              actor_key_id=principal.key_id, filed_by_clerk=principal.role is Role.CLERK,
                              supersedes=material)

    created, _, _ = await receive_upload(request, runtime.settings.spool_dir, runtime.settings.max_upload_bytes,
                                         then=store, durable=not runtime.storage.seals)
    return await run_in_threadpool(_public, created, enterprise, service)


@router.post("/materials/{material_id}/withdraw", response_model=MaterialPublic,
             summary="Withdraw a material (enterprise); revoked on chain if anchored")
def withdraw_material(material_id: RowId, service: MaterialsDep, access: AccessDep,
                      principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    material, enterprise = access.material(principal, material_id, "material_withdraw")
    return _public(service.withdraw(material), enterprise, service)


@router.post("/materials/{material_id}/revoke", response_model=MaterialPublic,
             summary="Revoke a material as invalid (clerk); revoked on chain")
def revoke_material(material_id: RowId, body: RevokeBody, service: MaterialsDep, access: AccessDep,
                    principal: Annotated[Principal, Depends(require(Role.CLERK))]):
    material, enterprise = access.material(principal, material_id, "material_revoke")
    return _public(service.revoke(material, body.reason), enterprise, service)


@router.get("/materials/{material_id}/content", summary="Download a material's bytes (owner, clerk, consented bank)",
            response_class=StreamingResponse, responses={200: {
                "description": "the bytes as stored, with the type found at upload (PDF, OFD, JPEG, PNG, …)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def download_material(material_id: RowId, service: MaterialsDep, access: AccessDep,
                      principal: Annotated[Principal, Depends(require(*OWNERS, Role.BANK))]):
    material, _ = access.material(principal, material_id, "material_download")
    chunks = service.content(material)
    ascii_name = material.file_name.encode("ascii", "replace").decode().replace('"', "")
    from urllib.parse import quote

    # (nosniff and a sandboxing policy come with every answer: main.py)
    headers = {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(material.file_name)}",
               "X-Content-SHA256": material.sha256, "Content-Length": str(material.size)}
    return StreamingResponse(chunks, media_type=material.content_type.split(";")[0], headers=headers)


@router.get("/materials/{material_id}/proof", summary="The material's proof bundle (JSON, version 1)")
def material_proof(material_id: RowId, service: MaterialsDep, access: AccessDep,
                   principal: Annotated[Principal, Depends(require(*OWNERS, Role.BANK))]):
    material, _ = access.material(principal, material_id, "material_proof")
    return service.bundle(material).to_json()


@router.post("/verify/material", summary="Verify a file (multipart: file, bundle) or a hash (JSON) against a proof bundle",
             openapi_extra=multipart_body(
                 {"bundle": {"maxLength": MAX_FIELD, "contentMediaType": "application/json",
                             "description": "the proof bundle (JSON text), as GET /materials/{id}/proof gives it"}},
                 ("file", "bundle"), json_alternative=VerifyHashBody.model_json_schema()))
async def verify_material_route(request: Request, runtime: RuntimeDep, service: MaterialsDep, metrics: MetricsDep,
                                _: Annotated[Principal | None, Depends(require_or_anonymous(*Role))]):
    if request.headers.get("content-type", "").startswith("multipart/"):
        upload, _name, fields = await receive_upload(request, runtime.settings.spool_dir,
                                                     runtime.settings.max_verify_upload_bytes, durable=False)
        upload.discard()
        digest = bytes.fromhex(upload.sha256)
        raw_bundle = fields.get("bundle")
        if not raw_bundle:
            raise ApiError(Kind.INVALID, "bundle_missing", "send the proof bundle as the 'bundle' form field")
        try:
            bundle_json = json.loads(raw_bundle)
        except ValueError:
            raise ApiError(Kind.INVALID, "bundle_malformed", "the bundle field is not JSON") from None
    else:
        raw = await request.body()  # capped at the edge (max_body_bytes) before it is read
        body = await run_in_threadpool(_verify_hash_body, raw)
        digest = bytes.fromhex(body.sha256.removeprefix("0x")) if body.sha256 else None
        bundle_json = body.bundle
    # Parsing a bundle and asking the node block: never on the event loop.
    verdict = await run_in_threadpool(_verify_bundle, service, bundle_json, digest)
    metrics.verdict("material", verdict)
    return verdict.as_dict()


def _verify_hash_body(raw: bytes) -> VerifyHashBody:
    try:
        return VerifyHashBody.model_validate_json(raw)
    except ValueError as exc:
        raise ApiError(Kind.INVALID, "invalid_request", f"send JSON {{sha256, bundle}}: {exc}") from None


def _verify_bundle(service, bundle_json, digest: bytes | None):
    try:
        bundle = ProofBundle.from_json(bundle_json)
    except ProofError as exc:
        raise ApiError(Kind.INVALID, exc.code, exc.message) from None
    return service.verify(bundle, digest)


@router.post("/verify/materials", response_model=VerifyBatchPublic,
             summary=f"Verify up to {MAX_BATCH_VERIFY} proof bundles (each with its file's SHA-256) in one call")
def verify_materials_route(body: VerifyBatchBody, service: MaterialsDep, metrics: MetricsDep,
                           _: Annotated[Principal | None, Depends(require_or_anonymous(*Role))]):
    items = []
    for i, item in enumerate(body.items):
        try:
            bundle = ProofBundle.from_json(item.bundle)
        except ProofError as exc:
            raise ApiError(Kind.INVALID, exc.code, f"items[{i}]: {exc.message}") from None
        items.append((bundle, bytes.fromhex(item.sha256.removeprefix("0x")) if item.sha256 else None))
    verdicts = service.verify_many(items)
    counts: dict[str, int] = {}
    for verdict in verdicts:
        metrics.verdict("material", verdict)
        counts[verdict.status.value] = counts.get(verdict.status.value, 0) + 1
    return VerifyBatchPublic(verdicts=[v.as_dict() for v in verdicts], counts=counts)


@router.get("/service-items", summary="Service items (办事事项) and the material types each requires")
def service_items(service: MaterialsDep, _: Annotated[Principal | None, Depends(require_or_anonymous(*Role))]):
    return [{"code": i.code, "name": i.name, "department": i.department,
             "requires": [{"folder": r, "folder_name": service.catalogue.types[r].name} for r in i.requires]}
            for i in service.catalogue.items.values()]


def _application_public(service, application, items) -> ApplicationPublic:
    item = service.catalogue.items[application.service_item]
    rows = [ApplicationItemPublic(folder=t, folder_name=service.catalogue.types[t].name,
                                  material_id=m.id if m else None, missing=m is None) for t, m in items]
    return ApplicationPublic(id=application.id, created_at=utc_iso(application.created_at), service_item=item.code, service_item_name=item.name,
                             department=item.department, items=rows, missing=[r.folder for r in rows if r.missing])


@router.post("/applications", status_code=201, response_model=ApplicationPublic,
             summary="Start an application; it is filled from the material bank and lists what is missing")
def create_application(body: ApplicationCreate, service: MaterialsDep, access: AccessDep,
                       principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    enterprise = access.acting_for(principal, None, "application_create", read=False)
    return _application_public(service, *service.application(service.apply(enterprise, body.service_item,
                                                                           principal.key_id)))


@router.get("/applications", response_model=list[ApplicationPublic],
            summary="An enterprise's applications, newest first (its own; clerks name the uscc)")
def list_applications(service: MaterialsDep, access: AccessDep,
                      principal: Annotated[Principal, Depends(require(*OWNERS))], uscc: UsccQuery = None):
    enterprise = access.acting_for(principal, uscc, "applications_list")
    return [_application_public(service, *service.application(a)) for a in service.application_ids(enterprise)]


@router.get("/applications/{application_id}", response_model=ApplicationPublic, summary="An application")
def get_application(application_id: RowId, service: MaterialsDep, access: AccessDep,
                    principal: Annotated[Principal, Depends(require(Role.ENTERPRISE, Role.CLERK, Role.BANK))]):
    application, items = service.application(application_id)
    access.application(principal, application, items, "application_read")
    return _application_public(service, application, items)


@router.post("/applications/{application_id}/materials/{material_id}/verify",
             summary="The receiving department verifies a material of an application: recorded as a reuse")
def verify_for_application(application_id: RowId, material_id: RowId, service: MaterialsDep, access: AccessDep,
                           principal: Annotated[Principal, Depends(require(Role.CLERK, Role.BANK))]):
    application, items = service.application(application_id)
    access.application(principal, application, items, "application_verify", material_id=material_id)
    reuse, verdict = service.record_reuse(application, items, material_id, principal.key_id, principal.organisation)
    return {"reuse_id": reuse.id, "verifier_org": reuse.verifier_org, "verdict": verdict.as_dict()}


@router.get("/materials/{material_id}/reuses", summary="Who reused a material, when, for what")
def material_reuses(material_id: RowId, service: MaterialsDep, access: AccessDep,
                    principal: Annotated[Principal, Depends(require(*OWNERS))]):
    access.material(principal, material_id, "material_reuses")
    return [{"application_id": r.application_id, "service_item": r.service_item, "verifier_org": r.verifier_org,
             "verdict": r.verdict, "at": utc_iso(r.created_at)} for r in service.reuses(material_id)]
