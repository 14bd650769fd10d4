"""Request and response bodies of the bank API (materials, folders, applications): what the OpenAPI schema shows."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MaterialPublic(BaseModel):
    id: int
    uscc: str
    folder: str
    folder_name: str
    classified: bool = Field(description="true when the system chose the folder from the name")
    title: str
    file_name: str
    content_type: str
    size: int
    sha256: str
    sm3: str
    version: int
    lineage_id: int
    supersedes_id: int | None
    state: str
    label: str | None
    valid_until: int | None
    reuse_count: int
    anchored: bool
    revocation_state: str | None
    proof_replaced_at: int | None = Field(default=None, description=(
        "unix seconds: when this material was witnessed again because the key that anchored it was declared "
        "compromised; proofs downloaded before then verify INVALID key_compromised"))


class FolderPublic(BaseModel):
    code: str
    name: str
    count: int


class MaterialList(BaseModel):
    folders: list[FolderPublic]
    items: list[MaterialPublic]


class ConfirmBody(BaseModel):
    folder: str | None = Field(default=None, description="correct the suggested folder before confirming")


class RevokeBody(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class VerifyHashBody(BaseModel):
    sha256: str | None = Field(default=None, pattern="^(0x)?[0-9a-fA-F]{64}$")
    bundle: dict


MAX_BATCH_VERIFY = 1000


class VerifyBatchBody(BaseModel):
    items: list[VerifyHashBody] = Field(min_length=1, max_length=MAX_BATCH_VERIFY,
                                        description="bundles with the SHA-256 of their files, each verified apart")


class VerifyBatchPublic(BaseModel):
    verdicts: list[dict] = Field(description="one verdict per item, in the order sent")
    counts: dict[str, int] = Field(description="how many verdicts of each status")


class ApplicationCreate(BaseModel):
    service_item: str


class ApplicationItemPublic(BaseModel):
    folder: str
    folder_name: str
    material_id: int | None
    missing: bool


class ApplicationPublic(BaseModel):
    id: int
    created_at: str | None = None  # UTC, with its zone
    service_item: str
    service_item_name: str
    department: str
    items: list[ApplicationItemPublic]
    missing: list[str]

