"""Record kinds (licences, the 24 e-permits in 6 categories, regulatory and credit records,
inspections, bank receipts) and who may see what of them.

`category` is what an issuer is authorised for, in the API (an issuer key's scope) and on chain
(`issuerRole(category)`). `public` kinds are 公示 data; `personal` fields are masked for
everyone but the enterprise itself and inspectors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordKind:
    code: str
    name: str
    category: str
    public: bool = True
    personal: tuple[str, ...] = ()  # data fields holding personal data


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    group: str  # licence | permit | regulatory | credit | inspection | receipt


CATEGORIES = {c.code: c for c in (
    Category("licence", "营业执照", "licence"),
    Category("permit.food", "食品餐饮", "permit"),
    Category("permit.special_equipment", "特种设备", "permit"),
    Category("permit.industrial", "工业生产", "permit"),
    Category("permit.inspection_testing", "检验检测", "permit"),
    Category("permit.metrology", "计量", "permit"),
    Category("permit.drug_medical", "药品医疗", "permit"),
    Category("regulatory.abnormal", "经营异常名录", "regulatory"),
    Category("regulatory.penalty", "行政处罚", "regulatory"),
    Category("regulatory.dishonest", "严重违法失信名单", "regulatory"),
    Category("credit.grade", "信用等级", "credit"),
    Category("inspection", "检查记录", "inspection"),
    Category("bank.receipt", "银行核验回执", "receipt"),
)}

_K = RecordKind
KINDS = {k.code: k for k in (
    _K("business_licence", "营业执照", "licence", personal=("legal_representative_id",)),
    # 食品餐饮
    _K("food_business", "食品经营许可证", "permit.food"),
    _K("food_production", "食品生产许可证", "permit.food"),
    _K("food_workshop", "食品小作坊登记证", "permit.food"),
    _K("food_vendor", "食品摊贩登记卡", "permit.food"),
    # 特种设备
    _K("boiler_use", "锅炉使用登记证", "permit.special_equipment"),
    _K("elevator_use", "电梯使用登记证", "permit.special_equipment"),
    _K("pressure_vessel_use", "压力容器使用登记证", "permit.special_equipment"),
    _K("special_equipment_production", "特种设备生产许可证", "permit.special_equipment"),
    # 工业生产
    _K("industrial_product_production", "工业产品生产许可证", "permit.industrial"),
    _K("hazardous_chemicals_business", "危险化学品经营许可证", "permit.industrial"),
    _K("hazardous_chemicals_use", "危险化学品安全使用许可证", "permit.industrial"),
    _K("fireworks_retail", "烟花爆竹经营（零售）许可证", "permit.industrial"),
    # 检验检测
    _K("inspection_body", "检验检测机构资质认定证书", "permit.inspection_testing"),
    _K("vehicle_inspection", "机动车检验机构资质认定证书", "permit.inspection_testing"),
    _K("food_testing", "食品检验机构资质认定证书", "permit.inspection_testing"),
    _K("environment_monitoring", "环境监测机构资质认定证书", "permit.inspection_testing"),
    # 计量
    _K("measurement_standard", "计量标准考核证书", "permit.metrology"),
    _K("metrology_authorisation", "计量授权证书", "permit.metrology"),
    _K("instrument_pattern_approval", "计量器具型式批准证书", "permit.metrology"),
    _K("instrument_repair", "计量器具修理资格", "permit.metrology"),
    # 药品医疗
    _K("drug_retail", "药品经营许可证（零售）", "permit.drug_medical"),
    _K("medical_device_business", "医疗器械经营许可证", "permit.drug_medical"),
    _K("class2_device_record", "第二类医疗器械经营备案凭证", "permit.drug_medical"),
    _K("medical_institution", "医疗机构执业许可证", "permit.drug_medical"),
    # regulatory and credit
    _K("abnormal_listing", "列入经营异常名录", "regulatory.abnormal"),
    _K("administrative_penalty", "行政处罚决定", "regulatory.penalty", personal=("party_id",)),
    _K("serious_dishonesty", "列入严重违法失信名单", "regulatory.dishonest"),
    _K("credit_grade", "信用等级评定", "credit.grade", public=False),
    _K("inspection", "现场检查记录", "inspection", public=False),
    _K("verification_receipt", "银行核验回执", "bank.receipt", public=False),
)}

PERMIT_KINDS = [k for k in KINDS.values() if k.category.startswith("permit.")]
assert len(PERMIT_KINDS) == 24 and len({k.category for k in PERMIT_KINDS}) == 6

# The record category an inspector or bank key issues in, besides issuer keys' own scope.
ROLE_CATEGORY = {"inspector": "inspection", "bank": "bank.receipt"}


def category_of(principal) -> str | None:
    """The record category a caller (a `Principal`) may write: an issuer key's scope, or its role's own."""
    if principal.role.value == "issuer":
        return principal.scope
    return ROLE_CATEGORY.get(principal.role.value)


def mask(value: str) -> str:
    """Keep the first 4 and last 4 characters of an identifier: 3501**********1234."""
    value = str(value)
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
