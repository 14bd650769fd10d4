"""Consent (申请人授权用): an enterprise's grants.

An enterprise grants one verifier organisation read access to listed materials (by id or by
folder) or applications for a purpose until a time; it can revoke the grant. What a grant lets a
caller read, and the access log of every read, are decided in `access.AccessPolicy`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from materials_api.bank.access import AccessPolicy
from materials_api.bank.models import ConsentGrant
from materials_api.identity.api_keys import Principal
from materials_api.platform.errors import Kind, ServiceError
from materials_api.registry.models import Enterprise


class ConsentError(ServiceError):
    pass


class ConsentService:
    def __init__(self, sessions: sessionmaker, access: AccessPolicy):
        self.sessions = sessions
        self.access = access

    # --- grants ---------------------------------------------------------------------------------
    def grant(self, enterprise: Enterprise, principal: Principal, *, verifier_organisation: str,
              material_ids: list[int], material_types: list[str], purpose: str, expires_at: int,
              known_types: set[str], application_ids: list[int] = ()) -> ConsentGrant:
        if expires_at <= int(self.access.clock.time()):
            raise ConsentError(Kind.INVALID, "grant_expiry", "a grant must end in the future")
        if not material_ids and not material_types and not application_ids:
            raise ConsentError(Kind.INVALID, "grant_empty", "name the materials, folders or applications the grant covers")
        unknown = [t for t in material_types if t not in known_types]
        if unknown:
            raise ConsentError(Kind.INVALID, "unknown_folder", f"no material folder {unknown[0]!r}")
        self.access.own_materials(principal, enterprise, material_ids, "consent_grant")
        self.access.own_applications(principal, enterprise, list(application_ids), "consent_grant")
        with self.sessions.begin() as s:
            grant = ConsentGrant(enterprise_id=enterprise.id, verifier_organisation=verifier_organisation,
                                 material_ids=json.dumps(sorted(set(material_ids))),
                                 material_types=json.dumps(sorted(set(material_types))),
                                 application_ids=json.dumps(sorted(set(application_ids))), purpose=purpose,
                                 expires_at=expires_at, created_by_key_id=principal.key_id)
            s.add(grant)
            s.flush()
            return grant

    def revoke(self, enterprise: Enterprise, principal: Principal, grant_id: int) -> ConsentGrant:
        grant = self.access.own_grant(principal, enterprise, grant_id, "grant_revoke")
        if grant.revoked_at is not None:
            raise ConsentError(Kind.CONFLICT, "grant_revoked", f"grant {grant_id} is already revoked")
        with self.sessions.begin() as s:
            s.execute(update(ConsentGrant).where(ConsentGrant.id == grant_id)
                      .values(revoked_at=datetime.now(timezone.utc)))
        with self.sessions() as s:
            return s.get(ConsentGrant, grant_id)

    def received(self, principal: Principal) -> list[tuple[ConsentGrant, Enterprise, list]]:
        """The active grants made to the caller's organisation (a bank's), newest first, each with
        its enterprise and exactly the materials it covers now. Listing them reads the
        enterprises' material titles: each enterprise's access log says so."""
        with self.sessions() as s:
            rows = list(s.execute(select(ConsentGrant, Enterprise).join(Enterprise, Enterprise.id == ConsentGrant.enterprise_id)
                                  .where(ConsentGrant.verifier_organisation == principal.organisation,
                                         ConsentGrant.revoked_at.is_(None))
                                  .order_by(ConsentGrant.id.desc())))
        out = []
        for grant, enterprise in rows:
            if not self.access.grant_active(grant):
                continue
            materials = self.access.covered_materials(grant)
            self.access.log(enterprise.id, principal, "consent_received", f"grant {grant.id} ({len(materials)} materials)",
                            purpose=grant.purpose)
            out.append((grant, enterprise, materials))
        return out

    def list(self, enterprise: Enterprise) -> list[ConsentGrant]:
        with self.sessions() as s:
            return list(s.scalars(select(ConsentGrant).where(ConsentGrant.enterprise_id == enterprise.id)
                                  .order_by(ConsentGrant.id.desc())))
