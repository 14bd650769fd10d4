"""Request and response bodies of the identity API (API keys): what the OpenAPI schema shows."""

from __future__ import annotations

from pydantic import BaseModel, Field

from materials_api.identity.models import Role
from materials_api.platform.models import UtcDateTime


class KeyCreate(BaseModel):
    organisation: str = Field(min_length=1, max_length=200)
    role: Role
    scope: str | None = Field(default=None, description="issuer: record category; enterprise: its USCC")


class KeyCreated(BaseModel):
    id: int
    organisation: str
    role: Role
    scope: str | None
    key: str = Field(description="shown once; only its hash is stored")


class KeyPublic(BaseModel):
    id: int
    organisation: str
    role: Role
    scope: str | None
    prefix: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None

