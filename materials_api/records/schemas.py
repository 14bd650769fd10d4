"""Request and response bodies of the records API (records, their status, consent grants): what the OpenAPI schema shows."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from materials_api.platform.models import RowIdValue, UsccValue, UtcDateTime


class RecordCreate(BaseModel):
    uscc: UsccValue
    kind: str = Field(description="a record kind code, see GET /api/v1/record-kinds")
    number: str | None = Field(default=None, max_length=100, description="证号 / decision number")
    title: str | None = Field(default=None, max_length=200)
    data: dict = Field(default_factory=dict, description="the record's fields (addresses, scope, findings…)")
    valid_from: date | None = None
    valid_until: date | None = None


class RecordBatch(BaseModel):
    changes: list[dict] = Field(min_length=1, max_length=10_000, description=(
        "changes from the issuer's own system, applied in order; each: uscc, kind, source_id, source_version "
        "(a whole number that grows with every change there), and number, title, data, valid_from, valid_until "
        "(YYYY-MM-DD), status (valid | suspended | revoked | removed), reason as they apply"))


class ChangeResultPublic(BaseModel):
    index: int = Field(description="the change's position in the call, from 0")
    outcome: Literal["created", "amended", "status_changed", "updated", "unchanged", "refused"]
    record_id: int | None = None
    reason: str | None = Field(default=None, description="why a change was refused (a reason code)")
    message: str | None = None


class RecordBatchResult(BaseModel):
    applied: int = Field(description="changes that changed something (created, amended, status_changed, updated)")
    unchanged: int = Field(description="replays of a version already held")
    refused: int
    items: list[ChangeResultPublic]


class RecordStatusChange(BaseModel):
    status: Literal["valid", "suspended", "revoked", "removed"]
    reason: str | None = Field(default=None, max_length=200)


class ConsentCreate(BaseModel):
    verifier_organisation: str = Field(min_length=1, max_length=200, description="the organisation allowed to read")
    material_ids: list[RowIdValue] = Field(default_factory=list, max_length=200)
    material_types: list[str] = Field(default_factory=list, max_length=50)
    application_ids: list[RowIdValue] = Field(default_factory=list, max_length=50,
                                       description="applications the organisation may read, with their materials")
    purpose: str = Field(min_length=1, max_length=200, examples=["开立对公账户"])
    expires_at: UtcDateTime

