"""The enterprise register over HTTP: register, list, read, and change an enterprise's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from materials_api.api.deps import EnterprisesDep, SessionDep, UsccPath, require
from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from materials_api.platform.models import ChainState
from materials_api.registry.models import Enterprise, EnterpriseStatus
from materials_api.registry.schemas import (
    ChainWitness,
    EnterpriseCreate,
    EnterpriseList,
    EnterprisePublic,
    StatusChange,
)

router = APIRouter(prefix="/api/v1/enterprises", tags=["enterprises"])

READERS = (Role.GOVERNOR, Role.REGISTRAR, Role.ISSUER, Role.CLERK, Role.ENTERPRISE, Role.BANK, Role.INSPECTOR,
           Role.PUBLIC)


def to_public(e: Enterprise, deployment) -> EnterprisePublic:
    return EnterprisePublic(
        uscc=e.uscc, name=e.name, status=EnterpriseStatus(e.status), registered_at=e.created_at,
        chain=ChainWitness(state=ChainState(e.chain_state),
                           status=EnterpriseStatus(e.chain_status) if e.chain_status else None,
                           tx_hash=e.tx_hash, block_number=e.block_number, contract=deployment.address,
                           chain_id=deployment.chain_id),
    )


def _respond(e: Enterprise, service, created: bool) -> JSONResponse:
    body = to_public(e, service.chain.deployment).model_dump(mode="json")
    # 202: stored, but the chain has not witnessed it yet (the reconciler will).
    status = (201 if created else 200) if e.chain_state == ChainState.CONFIRMED.value else 202
    return JSONResponse(body, status_code=status)


@router.post("", status_code=201, response_model=EnterprisePublic,
             responses={202: {"description": "stored; chain write pending"}, 409: {}, 422: {}},
             summary="Register an enterprise (registrar)")
def register_enterprise(body: EnterpriseCreate, service: EnterprisesDep,
                        principal: Annotated[Principal, Depends(require(Role.REGISTRAR))]):
    enterprise = service.register(body.uscc, body.name, actor_key_id=principal.key_id)
    return _respond(enterprise, service, created=True)


@router.get("", response_model=EnterpriseList,
            summary="List enterprises, or find them by part of their name (registrar, governor, clerk, inspector)")
def list_enterprises(session: SessionDep, service: EnterprisesDep,
                     _: Annotated[Principal, Depends(require(Role.REGISTRAR, Role.GOVERNOR, Role.CLERK, Role.INSPECTOR))],
                     status: EnterpriseStatus | None = None,
                     name: Annotated[str | None, Query(min_length=2, max_length=100,
                                                       description="part of the registered name (公示: names are public)")] = None,
                     after: Annotated[str | None, Query(description="USCC to continue after")] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100):
    q = select(Enterprise).order_by(Enterprise.uscc).limit(limit)
    if status:
        q = q.where(Enterprise.status == status.value)
    if name:
        q = q.where(Enterprise.name.contains(name.strip(), autoescape=True))
    if after:
        q = q.where(Enterprise.uscc > after)
    rows = list(session.scalars(q))
    return EnterpriseList(items=[to_public(e, service.chain.deployment) for e in rows],
                          next_after=rows[-1].uscc if len(rows) == limit else None)


@router.get("/{uscc}", response_model=EnterprisePublic, summary="One enterprise (every role)")
def get_enterprise(uscc: UsccPath, session: SessionDep, service: EnterprisesDep,
                   _: Annotated[Principal, Depends(require(*READERS))]):
    return to_public(service.get(session, uscc), service.chain.deployment)


@router.post("/{uscc}/status", response_model=EnterprisePublic,
             responses={202: {"description": "stored; chain write pending"}, 404: {}, 409: {}},
             summary="Change an enterprise's status (registrar)")
def change_status(uscc: UsccPath, body: StatusChange, service: EnterprisesDep,
                  principal: Annotated[Principal, Depends(require(Role.REGISTRAR))]):
    enterprise = service.set_status(uscc, body.status, body.reason, actor_key_id=principal.key_id)
    return _respond(enterprise, service, created=False)
