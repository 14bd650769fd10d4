"""Which records each audience sees of an enterprise: the public, a bank, an inspector, the
enterprise itself. Who may read what beyond that (consent, the access log) is the bank's
access policy (`bank/access.py`)."""

from __future__ import annotations

from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from materials_api.records.kinds import CATEGORIES, KINDS
from materials_api.records.models import Record

# Which record groups each audience sees; public kinds only for the public.
GROUPS = {
    "public": {"licence", "permit", "regulatory"},
    "bank": {"licence", "permit", "regulatory", "credit", "receipt"},
    "inspector": {"licence", "permit", "regulatory", "credit", "inspection"},
    "enterprise": {"licence", "permit", "regulatory", "credit", "inspection", "receipt"},
}


def audience(principal: Principal | None, uscc: str) -> str:
    """The view a caller gets of an enterprise: public, bank, inspector or the enterprise's own."""
    if principal is None:
        return "public"
    if principal.role is Role.ENTERPRISE:
        return "enterprise" if principal.scope == uscc else "public"
    if principal.role is Role.BANK:
        return "bank"
    if principal.role is Role.INSPECTOR:
        return "inspector"
    return "public"


def record_visible(record: Record, who: str, principal: Principal | None) -> bool:
    """Whether the audience `who` sees this record: its group, public kinds only for the public,
    a bank's own receipts only."""
    group = CATEGORIES[record.category].group
    if group not in GROUPS[who]:
        return False
    if who == "public" and not KINDS[record.kind].public:
        return False
    if group == "receipt" and who == "bank" and principal and record.issuer_organisation_id != principal.organisation_id:
        return False
    return True


def record_public(record: Record) -> bool:
    return record_visible(record, "public", None)
