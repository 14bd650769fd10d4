"""Request and response bodies of the codes API (dynamic codes, code verification): what the OpenAPI schema shows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from materials_api.platform.models import RowIdValue


class ConsentScope(BaseModel):
    """What a bank scanning this dynamic code may see: an existing grant (`grant_id`), or a new
    grant made from these fields for `verifier_org`."""

    grant_id: RowIdValue | None = Field(default=None, description="an active grant of the enterprise")
    verifier_org: str | None = Field(default=None, max_length=200, description="the organisation allowed")
    material_types: list[str] = Field(default_factory=list, max_length=50)
    material_ids: list[RowIdValue] = Field(default_factory=list, max_length=200)
    purpose: str | None = Field(default=None, max_length=200, examples=["开立对公账户"])
    expires_at: int | None = Field(default=None, description="unix seconds; the grant's own end (never after the code's)")


class DynamicCodeCreate(BaseModel):
    ttl_seconds: int = Field(default=300, ge=10, le=3600)
    single_use: bool = False
    scope: ConsentScope | None = None


class DynamicCodePublic(BaseModel):
    code: str
    nonce: str
    issued_at: int
    expires_at: int
    single_use: bool
    scope: ConsentScope | None
    qr_version: int
    svg: str = Field(description="the code as an SVG picture to show on screen (亮码)")


class VerifyCodeRequest(BaseModel):
    code: str = Field(min_length=1, max_length=2000, description="the scanned text or URL")


class CheckPublic(BaseModel):
    name: str
    status: Literal["VALID", "INVALID", "ERROR", "SKIPPED"]
    reason: str
    message: str


class VerdictPublic(BaseModel):
    status: Literal["VALID", "INVALID", "ERROR", "SKIPPED"]
    checks: list[CheckPublic]
    warnings: list[str] = Field(default_factory=list,
                                description="reasons of VALID checks to tell the relying party (key_retired, ...)")
    kind: str | None
    uscc: str | None
    signer: str | None
    expires_at: int | None
    scope: dict | None
    enterprise: dict | None
    genuine: Literal["VALID", "INVALID", "ERROR", "SKIPPED"] | None = Field(
        default=None, description="the code's genuineness alone (who made it, unaltered, in force), apart from "
                                  "the enterprise's standing")
    view: dict | None = Field(default=None, description="what the caller's role may see, each item verified")


class CodeKeyPublic(BaseModel):
    """A static-code signing key: active (signs new codes), retired (its codes stay valid) or
    compromised (its codes verify INVALID and are re-issued)."""

    kid: int
    address: str
    status: str

    @classmethod
    def of(cls, key) -> "CodeKeyPublic":
        return cls(kid=key.kid, address=key.address, status=key.status)


class AffectedEnterprise(BaseModel):
    uscc: str
    name: str


class StaticCodeStatus(BaseModel):
    """The enterprise portal's question: is the code on our wall still good? `replace_code`:
    a key that signed one of its codes was declared compromised (请更换企业码)."""

    uscc: str
    replace_code: bool
    active_kid: int
