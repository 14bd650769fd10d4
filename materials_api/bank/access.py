"""Who may see an enterprise's non-public data: decided, and logged, in this one place.

Routes resolve every enterprise object they are handed (a material, an application, a record, a
grant, a USCC to act for) through `AccessPolicy`; nothing else decides or writes the access log.

- The enterprise itself sees its own objects; nothing is logged.
- Every other caller's read of a non-public object writes one access-log entry of the enterprise
  (who, organisation, role, what, purpose, outcome), allowed or refused. Clerks act for the
  enterprise at the service window; their reads are logged too.
- A bank reads materials and applications only under an active grant of the enterprise to its
  organisation that covers them (a listed material, a listed folder's newest material, or a
  listed application and the materials filled into it).
- Refusals do not tell "exists" from "not yours": a caller that cannot know an object gets the
  same 404 as for an id never used. Only a bank whose organisation was once granted that very
  object (the grant expired or was revoked) gets 403 `consent_required`: it already holds the
  reference, so the answer reveals nothing new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import sessionmaker

from codes.uscc import validate
from materials_api.bank.models import (
    AccessLogEntry,
    Application,
    ApplicationMaterial,
    ConsentGrant,
    Material,
    MaterialState,
)
from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from chain.clock import SYSTEM, Clock
from materials_api.platform.errors import Kind, ServiceError
from materials_api.records.kinds import category_of
from materials_api.records.models import Record
from materials_api.records.visibility import audience, record_public, record_visible
from materials_api.registry.models import Enterprise

WINDOW = "窗口代办"  # the purpose logged for a clerk acting for the enterprise at the service window


class AccessDenied(ServiceError):
    pass


@dataclass(frozen=True)
class Target:
    """What a log entry says was looked at."""

    enterprise_id: int
    text: str


_ENTERPRISE_BY_USCC = select(Enterprise).where(Enterprise.uscc == bindparam("uscc"))


class AccessPolicy:
    def __init__(self, sessions: sessionmaker, clock: Clock = SYSTEM):
        self.sessions = sessions
        self.clock = clock

    def grant_active(self, grant: ConsentGrant) -> bool:
        """Not revoked and not yet expired, by this service's clock."""
        return grant_active(grant, int(self.clock.time()))

    # --- the log ---------------------------------------------------------------------------------
    def log(self, enterprise_id: int, principal: Principal | None, action: str, target: str, *,
            outcome: str = "allowed", purpose: str | None = None, reason: str | None = None) -> None:
        with self.sessions.begin() as s:
            s.add(AccessLogEntry(enterprise_id=enterprise_id, actor_key_id=principal.key_id if principal else None,
                                 organisation=principal.organisation if principal else "(anonymous)",
                                 role=principal.role.value if principal else "public", action=action,
                                 target=target[:200], purpose=(purpose or None) and purpose[:200], outcome=outcome,
                                 reason=(reason or None) and reason[:200]))

    def entries(self, enterprise: Enterprise, *, limit: int | None, before: int | None = None) -> list[AccessLogEntry]:
        """The enterprise's log, newest first: `limit` entries (None: all) older than entry `before`."""
        query = select(AccessLogEntry).where(AccessLogEntry.enterprise_id == enterprise.id)
        if before is not None:
            query = query.where(AccessLogEntry.id < before)
        with self.sessions() as s:
            return list(s.scalars(query.order_by(AccessLogEntry.id.desc()).limit(limit)))

    def _allow(self, principal: Principal | None, enterprise: Enterprise, action: str, target: str,
               purpose: str | None = None) -> None:
        if not _is_owner(principal, enterprise):
            self.log(enterprise.id, principal, action, target, purpose=purpose)

    def _refuse(self, principal: Principal | None, enterprise_id: int, action: str, target: str, *, kind: Kind,
                code: str, message: str, reason: str) -> AccessDenied:
        self.log(enterprise_id, principal, action, target, outcome="denied", reason=reason)
        return AccessDenied(kind, code, message)

    # --- enterprises named by USCC ---------------------------------------------------------------
    def acting_for(self, principal: Principal, uscc: str | None, action: str, *, read: bool = True) -> Enterprise:
        """The enterprise a caller names (an enterprise key: only its own). A read of its data by
        anyone else is logged; an enterprise key naming another enterprise is refused and logged.
        USCCs are public (printed on every licence), so 403 here reveals nothing."""
        if principal.role is Role.ENTERPRISE:
            if uscc and uscc.strip().upper() != principal.scope:
                other = self._by_uscc(uscc.strip().upper())
                if other is not None:
                    self.log(other.id, principal, action, f"enterprise {other.uscc}", outcome="denied",
                             reason="an enterprise key acts only for its own enterprise")
                raise AccessDenied(Kind.FORBIDDEN, "not_your_enterprise", "an enterprise key acts only for its own USCC")
            uscc = principal.scope
        if not uscc:
            raise AccessDenied(Kind.INVALID, "uscc_required", "name the enterprise: uscc")
        enterprise = self._by_uscc(validate(uscc))
        if enterprise is None:
            raise AccessDenied(Kind.NOT_FOUND, "enterprise_not_found", f"no enterprise with USCC {uscc.strip().upper()}")
        if read or principal.role is Role.CLERK:
            self._allow(principal, enterprise, action, f"enterprise {enterprise.uscc}",
                        WINDOW if principal.role is Role.CLERK else None)
        return enterprise

    def _by_uscc(self, uscc: str) -> Enterprise | None:
        with self.sessions() as s:
            return s.execute(_ENTERPRISE_BY_USCC, {"uscc": uscc}).scalar()

    # --- materials -------------------------------------------------------------------------------
    def material(self, principal: Principal, material_id: int, action: str) -> tuple[Material, Enterprise]:
        """A material the caller may see for `action`: its own enterprise's, any for a clerk at
        the window, a consented one for a bank."""
        missing = AccessDenied(Kind.NOT_FOUND, "material_not_found", f"no material {material_id}")
        with self.sessions() as s:
            material = s.get(Material, material_id)
            if material is None or material.state == MaterialState.STORING.value:
                raise missing
            enterprise = s.get(Enterprise, material.enterprise_id)
        target = f"material {material.id}"
        if _is_owner(principal, enterprise):
            return material, enterprise
        if principal.role is Role.CLERK:
            self._allow(principal, enterprise, action, f"{target} ({material.title})", WINDOW)
            return material, enterprise
        if principal.role is Role.BANK:
            grants = self._grants(enterprise.id, principal.organisation)
            for grant in grants:
                if self.grant_active(grant) and material.id in {m.id for m in self.covered_materials(grant)}:
                    self._allow(principal, enterprise, action, f"{target} ({material.title})", grant.purpose)
                    return material, enterprise
            if any(self._names_material(grant, material) for grant in grants):
                raise self._refuse(principal, enterprise.id, action, target, kind=Kind.FORBIDDEN, code="consent_required",
                                   message="no active grant of the enterprise lets your organisation read this",
                                   reason="the grant naming it is revoked or expired")
        raise self._refuse(principal, enterprise.id, action, target, kind=Kind.NOT_FOUND, code=missing.code,
                           message=missing.message, reason="no grant of the enterprise covers it")

    def own_materials(self, principal: Principal, enterprise: Enterprise, material_ids: list[int], action: str) -> None:
        """Materials an enterprise names (in a grant): each must be its own."""
        query = select(Material.id, Material.enterprise_id).where(
            Material.id.in_(material_ids), Material.state != MaterialState.STORING.value)
        self._own(principal, enterprise, material_ids, query, "material", action)

    def own_applications(self, principal: Principal, enterprise: Enterprise, application_ids: list[int],
                         action: str) -> None:
        """Applications an enterprise names (in a grant): each must be its own."""
        query = select(Application.id, Application.enterprise_id).where(Application.id.in_(application_ids))
        self._own(principal, enterprise, application_ids, query, "application", action)

    def _own(self, principal: Principal, enterprise: Enterprise, ids: list[int], query, noun: str, action: str) -> None:
        """Naming another enterprise's object is refused like an unknown id, and logged in that
        enterprise's log."""
        if not ids:
            return
        with self.sessions() as s:
            owners = dict(s.execute(query).all())
        for object_id in ids:
            owner = owners.get(object_id)
            if owner == enterprise.id:
                continue
            if owner is not None:
                self.log(owner, principal, action, f"{noun} {object_id}", outcome="denied",
                         reason=f"another enterprise's {noun}")
            raise AccessDenied(Kind.NOT_FOUND, f"{noun}_not_found", f"no {noun} {object_id} of this enterprise")

    # --- applications ----------------------------------------------------------------------------
    def application(self, principal: Principal, application: Application, items: list[tuple[str, Material | None]],
                    action: str, *, material_id: int | None = None) -> Enterprise:
        """Whether the caller may read a loaded application (`MaterialService.application`), or
        (with `material_id`) check one of its materials: the enterprise's own, any for a clerk,
        under a covering grant for a bank."""
        missing = AccessDenied(Kind.NOT_FOUND, "application_not_found", f"no application {application.id}")
        with self.sessions() as s:
            enterprise = s.get(Enterprise, application.enterprise_id)
        filled = {m.id for _, m in items if m is not None}
        target = f"application {application.id} ({application.service_item})"
        if material_id is not None:
            target += f", material {material_id}"
        if _is_owner(principal, enterprise):
            return enterprise
        if principal.role is Role.CLERK:
            self._allow(principal, enterprise, action, target, WINDOW)
            return enterprise
        if principal.role is Role.BANK:
            wanted = {material_id} if material_id is not None else filled
            grants = self._grants(enterprise.id, principal.organisation)
            for grant in grants:
                if not self.grant_active(grant):
                    continue
                if application.id in _ids(grant.application_ids) or (
                        wanted and wanted <= {m.id for m in self.covered_materials(grant)}):
                    self._allow(principal, enterprise, action, target, grant.purpose)
                    return enterprise
            # Only a grant that named the application tells a bank that it exists.
            if any(application.id in _ids(g.application_ids) for g in grants):
                raise self._refuse(principal, enterprise.id, action, target, kind=Kind.FORBIDDEN, code="consent_required",
                                   message="no active grant of the enterprise lets your organisation read this",
                                   reason="the grant naming it is revoked or expired")
        raise self._refuse(principal, enterprise.id, action, target, kind=Kind.NOT_FOUND, code=missing.code,
                           message=missing.message, reason="no grant of the enterprise covers it")

    # --- records ---------------------------------------------------------------------------------
    def record(self, principal: Principal | None, record_id: int, action: str, *,
               kind: str | None = None, write: bool = False) -> tuple[Record, Enterprise]:
        """A record the caller may see, or (`write`) change: only the organisation that issued it
        changes it (refusals are logged in the enterprise's access log). A record the caller's view does not show is "not found"."""
        missing = AccessDenied(Kind.NOT_FOUND, "record_not_found", f"no record {record_id}")
        with self.sessions() as s:
            record = s.get(Record, record_id)
            if record is None or (kind is not None and record.kind != kind):
                raise missing
            enterprise = s.get(Enterprise, record.enterprise_id)
        target = f"record {record.id} ({record.kind})"
        if _is_owner(principal, enterprise):
            return record, enterprise
        own_category = principal is not None and category_of(principal) == record.category
        if write and own_category:
            # A record changes only by the organisation that issued it: another district's food
            # authority, another inspector's bureau, holds the same category but not this record.
            if record.issuer_organisation_id == principal.organisation_id:
                return record, enterprise
            raise self._refuse(principal, enterprise.id, action, target, kind=Kind.FORBIDDEN,
                               code="not_issuing_organisation",
                               message=f"record {record.id} was issued by another organisation; only it may change it",
                               reason="a change by an organisation that did not issue the record")
        # Holding the category is no view of it: another bank's receipts (whom it checked, and
        # why) or another district's records are shown only as the caller's audience shows them.
        issued_here = own_category and record.issuer_organisation_id == principal.organisation_id
        if issued_here or record_visible(record, audience(principal, enterprise.uscc), principal):
            if write:
                refusal = AccessDenied(Kind.FORBIDDEN, "category_forbidden",
                                       f"{principal.organisation} may not change {record.category} records")
                if not record_public(record):
                    self.log(enterprise.id, principal, action, target, outcome="denied", reason=refusal.message)
                raise refusal
            if not record_public(record):
                self.log(enterprise.id, principal, action, target)
            return record, enterprise
        raise self._refuse(principal, enterprise.id, action, target, kind=Kind.NOT_FOUND, code=missing.code,
                           message=missing.message, reason="not in the caller's view")

    # --- grants and scans ------------------------------------------------------------------------
    def own_grant(self, principal: Principal, enterprise: Enterprise, grant_id: int, action: str) -> ConsentGrant:
        """One of the enterprise's own grants; another's is "not found" (and logged there)."""
        with self.sessions() as s:
            grant = s.get(ConsentGrant, grant_id)
        if grant is None or grant.enterprise_id != enterprise.id:
            if grant is not None:
                self.log(grant.enterprise_id, principal, action, f"grant {grant_id}", outcome="denied",
                         reason="another enterprise's grant")
            raise AccessDenied(Kind.NOT_FOUND, "grant_not_found", f"no grant {grant_id}")
        return grant

    def grant_use(self, principal: Principal, enterprise: Enterprise, grant_id: int) -> tuple[ConsentGrant | None, str]:
        """The grant a scanned dynamic code carries, if it lets this bank read now; else the reason."""
        with self.sessions() as s:
            grant = s.get(ConsentGrant, grant_id)
        if grant is None or grant.enterprise_id != enterprise.id or \
                grant.verifier_organisation != principal.organisation:
            self.log(enterprise.id, principal, "consent_use", f"grant {grant_id}", outcome="denied",
                     reason="grant is for another organisation")
            return None, "the grant is for another organisation"
        if not self.grant_active(grant):
            self.log(enterprise.id, principal, "consent_use", f"grant {grant_id}", outcome="denied",
                     reason="grant revoked or expired", purpose=grant.purpose)
            return None, "the grant is revoked or expired"
        return grant, ""

    def scan_view(self, principal: Principal | None, enterprise: Enterprise, who: str, purpose: str | None) -> None:
        """A verified code opened a non-public view (bank, inspector)."""
        if who in ("bank", "inspector"):
            self.log(enterprise.id, principal, "scan_view", f"{who} view of {enterprise.uscc}",
                     purpose=purpose or "scan")

    def covered_materials(self, grant: ConsentGrant) -> list[Material]:
        """Exactly the materials a grant covers now: the listed ones, the newest anchored
        material of each listed folder, and the materials filled into listed applications."""
        ids = set(_ids(grant.material_ids))
        types = json.loads(grant.material_types)
        with self.sessions() as s:
            if grant.application_ids:
                ids |= set(s.scalars(select(ApplicationMaterial.material_id).where(
                    ApplicationMaterial.application_id.in_(_ids(grant.application_ids)),
                    ApplicationMaterial.material_id.is_not(None))))
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

    def _grants(self, enterprise_id: int, organisation: str) -> list[ConsentGrant]:
        with self.sessions() as s:
            return list(s.scalars(select(ConsentGrant).where(ConsentGrant.enterprise_id == enterprise_id,
                                                             ConsentGrant.verifier_organisation == organisation)))

    @staticmethod
    def _names_material(grant: ConsentGrant, material: Material) -> bool:
        return material.id in _ids(grant.material_ids) or material.type_code in json.loads(grant.material_types)


def grant_active(grant: ConsentGrant, now: int) -> bool:
    return grant.revoked_at is None and grant.expires_at > now


def _ids(text: str) -> list[int]:
    return json.loads(text)  # a grant's JSON list column, never NULL (default and server default "[]")


def _is_owner(principal: Principal | None, enterprise: Enterprise) -> bool:
    return principal is not None and principal.role is Role.ENTERPRISE and principal.scope == enterprise.uscc
