"""Organisations' API keys over HTTP (governor only): create, list (never the secrets), revoke."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from materials_api.api.deps import RowId, SessionDep, require
from materials_api.api.errors import ApiError
from materials_api.identity.api_keys import KeyError_, Principal, create_key
from materials_api.identity.models import ApiKey, Role
from materials_api.identity.schemas import KeyCreate, KeyCreated, KeyPublic
from materials_api.platform.errors import Kind

router = APIRouter(prefix="/api/v1", tags=["organisations"])


@router.post("/keys", status_code=201, response_model=KeyCreated, summary="Create an API key (governor)")
def create_api_key(body: KeyCreate, session: SessionDep,
                   _: Annotated[Principal, Depends(require(Role.GOVERNOR))]):
    try:
        key, plain = create_key(session, body.organisation, body.role, body.scope)
    except KeyError_ as exc:
        raise ApiError(Kind.INVALID, "key_scope", str(exc)) from None
    except ValueError as exc:  # an enterprise scope that is not a valid USCC
        raise ApiError(Kind.INVALID, "key_scope", str(exc)) from None
    session.commit()
    return KeyCreated(id=key.id, organisation=body.organisation, role=body.role, scope=key.scope, key=plain)


@router.get("/keys", response_model=list[KeyPublic], summary="List API keys, never their secrets (governor)")
def list_api_keys(session: SessionDep, _: Annotated[Principal, Depends(require(Role.GOVERNOR))]):
    return [KeyPublic(id=k.id, organisation=k.organisation.name, role=Role(k.role), scope=k.scope, prefix=k.prefix,
                      created_at=k.created_at, revoked_at=k.revoked_at)
            for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key (governor)")
def revoke_api_key(key_id: RowId, session: SessionDep, _: Annotated[Principal, Depends(require(Role.GOVERNOR))]):
    key = session.get(ApiKey, key_id)
    if key is None:
        raise ApiError(Kind.NOT_FOUND, "key_not_found", f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(timezone.utc)
        session.commit()


@router.get("/verifiers", response_model=list[str],
            summary="The registered banks (organisations with a bank key or bank staff), to choose from when "
                    "granting consent (enterprises)")
def registered_banks(session: SessionDep, _: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    # A grant names the organisation exactly as its people and keys act: choosing from this list
    # means a grant is never made to a misspelt name that no bank will ever hold.
    from materials_api.identity.models import Organisation, User

    by_key = select(Organisation.name).join(ApiKey, ApiKey.organisation_id == Organisation.id).where(
        ApiKey.role == Role.BANK.value, ApiKey.revoked_at.is_(None))
    by_staff = select(Organisation.name).join(User, User.organisation_id == Organisation.id).where(
        User.role == Role.BANK.value, User.disabled_at.is_(None))
    return sorted(set(session.scalars(by_key)) | set(session.scalars(by_staff)))
