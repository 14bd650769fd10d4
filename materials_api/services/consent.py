"""Consent (申请人授权用) and the access log.

An enterprise grants one verifier organisation read access to listed materials (by id or by
folder) for a purpose until a time; it can revoke the grant. Every read of non-public data is
logged, and so is every refused attempt; the enterprise reads and exports its own log.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from ..models import AccessLogEntry, ConsentGrant, Enterprise, Material, MaterialState
from ..security import Principal
from . import ServiceError


class ConsentError(ServiceError):
    pass


class ConsentService:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    # --- grants ---------------------------------------------------------------------------------
    def grant(self, enterprise: Enterprise, *, verifier_organisation: str, material_ids: list[int],
              material_types: list[str], purpose: str, expires_at: int, actor_key_id: int | None,
              known_types: set[str]) -> ConsentGrant:
        if expires_at <= int(time.time()):
            raise ConsentError(422, "grant_expiry", "a grant must end in the future")
        if not material_ids and not material_types:
            raise ConsentError(422, "grant_empty", "name the materials or folders the grant covers")
        unknown = [t for t in material_types if t not in known_types]
        if unknown:
            raise ConsentError(422, "unknown_folder", f"no material folder {unknown[0]!r}")
        with self.sessions.begin() as s:
            owned = set(s.scalars(select(Material.id).where(Material.enterprise_id == enterprise.id,
                                                            Material.id.in_(material_ids))))
            foreign = [i for i in material_ids if i not in owned]
            if foreign:
                raise ConsentError(404, "material_not_found", f"no material {foreign[0]} of this enterprise")
            grant = ConsentGrant(enterprise_id=enterprise.id, verifier_organisation=verifier_organisation,
                                 material_ids=json.dumps(sorted(set(material_ids))),
                                 material_types=json.dumps(sorted(set(material_types))), purpose=purpose,
                                 expires_at=expires_at, created_by_key_id=actor_key_id)
            s.add(grant)
            s.flush()
            return grant

    def revoke(self, enterprise: Enterprise, grant_id: int) -> ConsentGrant:
        grant = self.get(enterprise, grant_id)
        if grant.revoked_at is not None:
            raise ConsentError(409, "grant_revoked", f"grant {grant_id} is already revoked")
        with self.sessions.begin() as s:
            s.execute(update(ConsentGrant).where(ConsentGrant.id == grant_id)
                      .values(revoked_at=datetime.now(timezone.utc)))
        return self.get(enterprise, grant_id)

    def get(self, enterprise: Enterprise, grant_id: int) -> ConsentGrant:
        with self.sessions() as s:
            grant = s.get(ConsentGrant, grant_id)
        if grant is None or grant.enterprise_id != enterprise.id:
            raise ConsentError(404, "grant_not_found", f"no grant {grant_id}")
        return grant

    def list(self, enterprise: Enterprise) -> list[ConsentGrant]:
        with self.sessions() as s:
            return list(s.scalars(select(ConsentGrant).where(ConsentGrant.enterprise_id == enterprise.id)
                                  .order_by(ConsentGrant.id.desc())))

    @staticmethod
    def active(grant: ConsentGrant, now: int | None = None) -> bool:
        return grant.revoked_at is None and grant.expires_at > (int(time.time()) if now is None else now)

    def covered_materials(self, grant: ConsentGrant) -> list[Material]:
        """Exactly the materials a grant covers now: the listed ones and the newest anchored
        material of each listed folder."""
        ids = json.loads(grant.material_ids)
        types = json.loads(grant.material_types)
        with self.sessions() as s:
            rows = list(s.scalars(select(Material).where(
                Material.enterprise_id == grant.enterprise_id, Material.state == MaterialState.ANCHORED.value,
                (Material.id.in_(ids)) | (Material.type_code.in_(types))).order_by(Material.id)))
        newest: dict[str, Material] = {}
        out = []
        for m in rows:
            if m.id in ids:
                out.append(m)
            elif m.type_code in types and (m.type_code not in newest or m.id > newest[m.type_code].id):
                newest[m.type_code] = m
        out += [m for m in newest.values() if m not in out]
        return sorted(out, key=lambda m: m.id)

    def grant_for_read(self, principal: Principal, material: Material) -> ConsentGrant | None:
        """An active grant letting the caller's organisation read this material, if any."""
        with self.sessions() as s:
            grants = list(s.scalars(select(ConsentGrant).where(
                ConsentGrant.enterprise_id == material.enterprise_id,
                ConsentGrant.verifier_organisation == principal.organisation)))
        for grant in grants:
            if self.active(grant) and any(m.id == material.id for m in self.covered_materials(grant)):
                return grant
        return None

    # --- access log ---------------------------------------------------------------------------
    def log(self, enterprise_id: int, principal: Principal | None, action: str, target: str, *,
            outcome: str = "allowed", purpose: str | None = None, reason: str | None = None) -> None:
        with self.sessions.begin() as s:
            s.add(AccessLogEntry(enterprise_id=enterprise_id, actor_key_id=principal.key_id if principal else None,
                                 organisation=principal.organisation if principal else "(anonymous)",
                                 role=principal.role.value if principal else "public", action=action,
                                 target=target[:200], purpose=(purpose or None) and purpose[:200], outcome=outcome,
                                 reason=(reason or None) and reason[:200]))

    def entries(self, enterprise: Enterprise, limit: int = 500) -> list[AccessLogEntry]:
        with self.sessions() as s:
            return list(s.scalars(select(AccessLogEntry).where(AccessLogEntry.enterprise_id == enterprise.id)
                                  .order_by(AccessLogEntry.id.desc()).limit(limit)))
