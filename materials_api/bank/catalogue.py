"""Material types (folders of the material bank) and service items (办事事项) that reuse them.

The built-in catalogue can be extended with `$QIYEMA_HOME/catalogue.json`:
    {"material_types": [{"code": ..., "name": ..., "keywords": [...], "validity_days": null}],
     "service_items": [{"code": ..., "name": ..., "department": ..., "requires": [...]}]}
Codes are ASCII (they go into proof leaves); names are what people read.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class MaterialType:
    code: str
    name: str
    keywords: tuple[str, ...] = ()
    validity_days: int | None = None  # typical life, used when the uploader gives no date


@dataclass(frozen=True)
class ServiceItem:
    code: str
    name: str
    department: str
    requires: tuple[str, ...] = field(default_factory=tuple)


MATERIAL_TYPES: tuple[MaterialType, ...] = (
    MaterialType("business_licence", "营业执照副本", ("营业执照", "执照", "营业证照", "三证合一", "business licen", "license copy")),
    MaterialType("lease_contract", "租赁合同/场地证明", ("租赁合同", "租赁协议", "租房", "房屋租赁", "场地证明", "场地使用", "房产证",
                                                 "不动产权", "产权证明", "住所证明", "经营场所", "房屋使用", "租约", "lease", "tenancy",
                                                 "rental", "premises")),
    MaterialType("qualification", "资质证书", ("资质", "资格证", "认证证书", "iso9001", "iso 9001", "iso14001", "高新技术企业证书",
                                           "专精特新", "等级证书", "安全生产许可", "certificate", "qualification", "cert"),
                 validity_days=3 * 365),
    MaterialType("financial_statement", "财务报表", ("财务报表", "资产负债表", "利润表", "损益表", "现金流量表", "审计报告", "财报",
                                              "财务报告", "年度报告", "月报表", "季报", "balance sheet", "income statement",
                                              "financial statement", "audit report", "p&l"), validity_days=365),
    MaterialType("identity_document", "身份证明", ("身份证", "护照", "港澳通行证", "台胞证", "居住证", "户口", "身份证明", "法人证件",
                                             "passport", "id card", "idcard")),
    MaterialType("articles_of_association", "公司章程", ("章程", "articles of association", "bylaws", "company constitution")),
    MaterialType("power_of_attorney", "授权委托书", ("授权委托书", "委托书", "授权书", "委托代理", "代理人授权", "power of attorney",
                                               "authorization letter", "authorisation letter", "poa")),
    MaterialType("tax_certificate", "纳税证明", ("完税证明", "纳税证明", "税收完税", "纳税信用", "税务证明", "纳税申报", "增值税",
                                            "tax certificate", "tax clearance", "tax return"), validity_days=180),
    MaterialType("bank_account", "银行开户证明", ("开户许可", "基本存款账户", "开户证明", "银行账户", "账户信息", "开户银行",
                                              "bank account")),
    MaterialType("shareholder_resolution", "股东会/董事会决议", ("股东会决议", "股东决定", "董事会决议", "股东大会", "决议",
                                                        "resolution", "board minutes")),
    MaterialType("social_security", "社保缴纳证明", ("社保", "社会保险", "公积金", "参保证明", "social security")),
    MaterialType("other", "其他", ()),
)

SERVICE_ITEMS: tuple[ServiceItem, ...] = (
    ServiceItem("bank_account_opening", "企业开立对公账户", "合作银行",
                ("business_licence", "articles_of_association", "identity_document", "power_of_attorney", "lease_contract")),
    ServiceItem("food_business_permit", "食品经营许可申请", "市场监督管理局",
                ("business_licence", "lease_contract", "identity_document", "qualification")),
    ServiceItem("high_tech_recognition", "高新技术企业认定", "科学技术委员会",
                ("business_licence", "financial_statement", "qualification", "tax_certificate", "social_security")),
    ServiceItem("change_registration", "企业变更登记", "市场监督管理局",
                ("business_licence", "shareholder_resolution", "articles_of_association", "identity_document",
                 "power_of_attorney")),
    ServiceItem("credit_application", "普惠金融贷款申请", "合作银行",
                ("business_licence", "financial_statement", "tax_certificate", "bank_account", "identity_document")),
    ServiceItem("talent_subsidy", "人才补贴申报", "人力资源和社会保障局",
                ("business_licence", "social_security", "identity_document", "lease_contract")),
)

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


class Catalogue:
    def __init__(self, types: tuple[MaterialType, ...] = MATERIAL_TYPES,
                 items: tuple[ServiceItem, ...] = SERVICE_ITEMS):
        self.types = {t.code: t for t in types}
        self.items = {i.code: i for i in items}
        for t in types:
            if not _CODE.match(t.code):
                raise ValueError(f"material type code {t.code!r} must match {_CODE.pattern}")
        for i in items:
            unknown = [r for r in i.requires if r not in self.types]
            if unknown:
                raise ValueError(f"service item {i.code} requires unknown types {unknown}")
        # Longest keywords first, so "股东会决议" wins over "决议".
        self._keywords = sorted(((kw.lower(), t.code) for t in types for kw in t.keywords),
                                key=lambda kv: -len(kv[0]))

    @classmethod
    def load(cls, home: Path | None = None) -> "Catalogue":
        extra = Path(home) / "catalogue.json" if home else None
        if not extra or not extra.exists():
            return cls()
        data = json.loads(extra.read_text(encoding="utf-8"))
        types = {t.code: t for t in MATERIAL_TYPES}
        for t in data.get("material_types", []):
            types[t["code"]] = MaterialType(t["code"], t["name"], tuple(t.get("keywords", ())), t.get("validity_days"))
        items = {i.code: i for i in SERVICE_ITEMS}
        for i in data.get("service_items", []):
            items[i["code"]] = ServiceItem(i["code"], i["name"], i["department"], tuple(i["requires"]))
        return cls(tuple(types.values()), tuple(items.values()))

    def classify(self, name: str) -> str:
        """The material type for a file or material name: the longest keyword found wins."""
        text = _normalise(name)
        for keyword, code in self._keywords:
            if keyword in text:
                return code
        return "other"


def _normalise(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).lower()
    text = re.sub(r"\.[a-z0-9]{1,5}$", "", text)  # the extension says nothing of the content
    return re.sub(r"[_\-]+", " ", text)
