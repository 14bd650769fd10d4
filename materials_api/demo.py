"""`qiyema demo`: a small, realistic district in a fresh home, so a newcomer sees every page
working at once — companies with licences (一照多址), permits, one on the abnormal list, one
revoked permit, materials anchored on chain, and a person of every role with a password.

Everything goes through the services, as the authorities' systems and people would: nothing is
written to the database behind them. Running it again on the same home changes nothing."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select

from codes.uscc import generate
from materials_api.identity.api_keys import Principal, authenticate, create_key
from materials_api.identity.models import Role, User
from materials_api.platform.errors import Kind, ServiceError
from materials_api.platform.runtime import Runtime
from materials_api.platform.storage import Spool
from materials_api.records.kinds import KINDS
from materials_api.registry.models import Enterprise, EnterpriseStatus
from materials_api.root import Services

DISTRICT, AREA = "上海市杨浦区", "310110"  # the division code every USCC here carries
COMPANIES = [  # name, addresses (一照多址), permits, abnormal
    ("上海杨浦示例餐饮管理有限公司", ["国定路335号", "政立路485号"], ["food_business"], False),
    ("上海五角场示例超市有限公司", ["淞沪路8号"], ["food_business", "drug_retail"], False),
    ("上海江湾示例医疗器械有限公司", ["殷行路1288号"], ["medical_device_business"], False),
    ("上海新江湾示例科技有限公司", ["国权北路1688号"], [], True),
    ("上海控江示例电梯工程有限公司", ["控江路1555号"], ["elevator_use"], False),
    ("上海长白示例食品有限公司", ["长白路200号"], ["food_production"], False),
]
MATERIALS = [("营业执照副本.pdf", "business_licence"), ("房屋租赁合同.pdf", "lease_contract"),
             ("法定代表人身份证.pdf", "identity_document")]
PEOPLE = [  # username, name, role, organisation (scope filled in for the enterprise user)
    ("demo_enterprise", "张经理", Role.ENTERPRISE, None),
    ("demo_clerk", "李窗口", Role.CLERK, "杨浦区行政服务中心"),
    ("demo_inspector", "王检查", Role.INSPECTOR, "杨浦区市场监管局执法大队"),
    ("demo_bank", "赵客户经理", Role.BANK, "示例银行杨浦支行"),
    ("demo_regulator", "陈科长", Role.REGISTRAR, "杨浦区市场监管局"),
]


class DemoRefused(ServiceError):
    """The demo district is not filled into this home (it is not new)."""


@dataclass
class DemoDistrict:
    companies: list[tuple[str, str]] = field(default_factory=list)  # (uscc, name)
    people: list[tuple[str, str, str]] = field(default_factory=list)  # (username, password, role)
    anchored: int = 0
    already: bool = False


def _issuer(runtime: Runtime, category: str, org: str) -> Principal:
    with runtime.sessions.begin() as s:
        _, plain = create_key(s, org, Role.ISSUER, category)
    with runtime.sessions() as s:
        return authenticate(s, plain)


def _pdf(title: str, uscc: str) -> bytes:
    # A minimal, well-formed PDF naming the company: enough for the sniffer and for a reader.
    text = f"{title} {uscc}".encode("utf-16-be").hex()
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
            b"% " + text.encode() + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def fill(runtime: Runtime, services: Services, seed: int = 2026) -> DemoDistrict:
    """Fill the home with the demo district; on a home that has it already, change nothing."""
    rng = random.Random(seed)
    usccs = [generate(rng, AREA) for _ in COMPANIES]
    district = DemoDistrict(companies=[(u, c[0]) for u, c in zip(usccs, COMPANIES)])
    with runtime.sessions() as s:
        if s.scalar(select(Enterprise.id).where(Enterprise.uscc == usccs[0])) is not None:
            district.already = True
            return district
        # Made-up companies and people with printed passwords have no place in a home that serves
        # anyone: only a new one (no enterprise, no person) gets the district.
        if s.scalar(select(Enterprise.id).limit(1)) is not None or s.scalar(select(User.id).limit(1)) is not None:
            raise DemoRefused(Kind.CONFLICT, "home_not_new",
                              f"{runtime.settings.home} already holds enterprises or people: the demo district goes "
                              "only into a new home (QIYEMA_HOME=/tmp/qiyema-demo qiyema demo)")
    licence = _issuer(runtime, "licence", "杨浦区市场监管局（登记）")
    issuers: dict[str, Principal] = {}
    abnormal = _issuer(runtime, "regulatory.abnormal", "杨浦区市场监管局（信用监管）")
    for uscc, (name, addresses, permits, is_abnormal) in zip(usccs, COMPANIES):
        enterprise = services.enterprises.register(uscc, name)
        services.records.issue(enterprise, "business_licence", licence, number=uscc, title=None,
                               data={"legal_representative": rng.choice("张王李赵刘陈杨黄") + "某",
                                     "addresses": [DISTRICT + a for a in addresses]},
                               valid_from=None, valid_until=None)
        for kind in permits:
            category = KINDS[kind].category
            issuers.setdefault(category, _issuer(runtime, category, f"杨浦区{KINDS[kind].name}发证机关"))
            services.records.issue(enterprise, kind, issuers[category], number=f"YP{rng.randrange(10**9):09d}",
                                   title=None, data={}, valid_from=None, valid_until=2_000_000_000)
        if is_abnormal:
            services.records.issue(enterprise, "abnormal_listing", abnormal, number=None, title=None,
                                   data={"reason": "未按期公示年度报告"}, valid_from=None, valid_until=None)
            services.enterprises.set_status(uscc, EnterpriseStatus.ABNORMAL, "未按期公示年度报告")
    # The second company's drug permit was revoked: a red line on its page.
    second = services.records.for_enterprise(_enterprise(runtime, usccs[1]).id)
    drug = next(r for r in second if r.kind == "drug_retail")
    services.records.set_status(drug, "revoked", "违规经营", issuers["permit.drug_medical"])
    # The first company's material bank: three materials, confirmed and anchored.
    first = _enterprise(runtime, usccs[0])
    for file_name, folder in MATERIALS:
        spool = Spool(runtime.settings.spool_dir, runtime.settings.max_upload_bytes)
        spool.write(_pdf(file_name, usccs[0]))
        material = services.materials.ingest(first, spool.finish(), file_name=file_name, title=None, type_code=folder,
                                             valid_until=None, actor_key_id=None)
        services.materials.confirm(material, None)
    district.anchored = services.anchorer.run_once(force=True).anchored
    for username, display, role, org in PEOPLE:
        password = secrets.token_urlsafe(9)
        services.accounts.create_user(org or COMPANIES[0][0], username, display, role,
                                      usccs[0] if role is Role.ENTERPRISE else None, password=password)
        district.people.append((username, password, role.value))
    return district


def _enterprise(runtime: Runtime, uscc: str) -> Enterprise:
    with runtime.sessions() as s:
        return s.scalar(select(Enterprise).where(Enterprise.uscc == uscc))
