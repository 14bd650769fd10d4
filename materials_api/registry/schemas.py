"""Request and response bodies of the registry API (enterprises): what the OpenAPI schema shows."""

from __future__ import annotations

from pydantic import BaseModel, Field

from materials_api.platform.models import ChainState, UsccValue, UtcDateTime
from materials_api.registry.models import EnterpriseStatus


class EnterpriseCreate(BaseModel):
    uscc: UsccValue
    name: str = Field(min_length=1, max_length=200, examples=["福建示例科技有限公司"])


class StatusChange(BaseModel):
    status: EnterpriseStatus
    reason: str | None = Field(default=None, max_length=500, description="why; kept in the database, not on chain")


class ChainWitness(BaseModel):
    state: ChainState = Field(description="pending: written ahead; sent: awaiting receipt; confirmed: on chain")
    status: EnterpriseStatus | None = Field(description="the status the chain holds")
    tx_hash: str | None
    block_number: int | None
    contract: str
    chain_id: int


class EnterprisePublic(BaseModel):
    uscc: str
    name: str
    status: EnterpriseStatus
    registered_at: UtcDateTime
    chain: ChainWitness


class EnterpriseList(BaseModel):
    items: list[EnterprisePublic]
    next_after: str | None

