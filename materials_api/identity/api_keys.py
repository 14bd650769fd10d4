"""API keys: `qk_<prefix>_<secret>`; only SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a fast hash is the right one (as for GitHub tokens): a
slow password hash would only slow every request without adding protection.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from materials_api.identity.models import ApiKey, Organisation, Role

ROLES_WITH_SCOPE = {Role.ISSUER: "record category", Role.ENTERPRISE: "USCC"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the organisation, role and scope of an API key or a signed-in person."""

    key_id: int | None  # the API key, for machines
    organisation_id: int
    organisation: str
    role: Role
    scope: str | None
    user_id: int | None = None  # the person, for a browser session


class KeyError_(ValueError):
    pass


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_key(session: Session, org_name: str, role: Role, scope: str | None = None) -> tuple[ApiKey, str]:
    """Create (or reuse) the organisation and a new key for it; returns the row and the plain key."""
    if role in ROLES_WITH_SCOPE and not scope:
        raise KeyError_(f"a {role.value} key needs a scope: the {ROLES_WITH_SCOPE[role]} it acts for")
    if role not in ROLES_WITH_SCOPE and scope:
        raise KeyError_(f"a {role.value} key takes no scope")
    if role is Role.ENTERPRISE:
        from codes.uscc import validate

        scope = validate(scope)
    org = session.scalar(select(Organisation).where(Organisation.name == org_name))
    if org is None:
        org = Organisation(name=org_name)
        session.add(org)
        session.flush()
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(organisation_id=org.id, role=role.value, scope=scope, prefix=prefix, secret_hash=_hash(secret))
    session.add(key)
    session.flush()
    return key, f"qk_{prefix}_{secret}"


def authenticate(session: Session, presented: str) -> Principal | None:
    """The principal of a presented key, or None if it is malformed, unknown or revoked."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "qk":
        return None
    _, prefix, secret = parts
    # Core, not ORM: this runs on every request.
    key = session.execute(_KEY_QUERY, {"prefix": prefix}).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _hash(secret)):
        return None
    return Principal(key.id, key.organisation_id, key.name, Role(key.role), key.scope)


_KEY_QUERY = (
    select(ApiKey.__table__.c.id, ApiKey.__table__.c.organisation_id, ApiKey.__table__.c.role,
           ApiKey.__table__.c.scope, ApiKey.__table__.c.secret_hash, ApiKey.__table__.c.revoked_at,
           Organisation.__table__.c.name)
    .join_from(ApiKey.__table__, Organisation.__table__)
    .where(ApiKey.__table__.c.prefix == bindparam("prefix"))
)
