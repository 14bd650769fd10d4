"""What people read for each state and check: one set of tables built from the Python enums,
used by the server-rendered pages and written to `static/labels.js` for the scripts (`python -m
materials_api.web.labels`). A test fails when an enum gains a member without a label, or when
labels.js no longer matches this file. Tables are keyed by the members' values: what the API,
the database and the scripts carry."""

from __future__ import annotations

import enum
import json
from pathlib import Path

from chain.verdict import WARNINGS, CheckName, Reason, Status
from materials_api.bank.models import MaterialState
from materials_api.records.models import RecordState
from materials_api.registry.models import EnterpriseStatus


def _key(value) -> str:
    return value.value if isinstance(value, enum.Enum) else value


def _by_value(table: dict) -> dict:
    return {_key(k): ([_key(x) for x in v] if isinstance(v, tuple) else v) for k, v in table.items()}


VERDICT = _by_value({Status.VALID: "真实有效", Status.INVALID: "无效或伪造", Status.ERROR: "暂时无法核验",
                     Status.SKIPPED: "未核验"})
WORD = _by_value({Status.VALID: "通过", Status.INVALID: "未通过", Status.ERROR: "无法核验", Status.SKIPPED: "未检查"})
MARK = _by_value({Status.VALID: "✔", Status.INVALID: "✘", Status.ERROR: "!", Status.SKIPPED: "–"})
CHECK = _by_value({
    CheckName.FORMAT: "格式", CheckName.ORIGIN: "来源网址", CheckName.SIGNATURE: "签名", CheckName.KEY: "密钥",
    CheckName.ISSUER: "签发机关", CheckName.EXPIRY: "有效期", CheckName.REPLAY: "一次性", CheckName.STATUS: "登记状态",
    CheckName.INTEGRITY: "内容完整", CheckName.PROOF: "存证路径", CheckName.ANCHOR: "链上存证",
    CheckName.LIVENESS: "区块链运行",
})
ENTERPRISE = _by_value({EnterpriseStatus.ACTIVE: "存续", EnterpriseStatus.ABNORMAL: "经营异常",
                        EnterpriseStatus.REVOKED: "吊销", EnterpriseStatus.DEREGISTERED: "注销"})
# A material's state as its owner sees it; "expired" is shown for an anchored one past its date.
MATERIAL = _by_value({
    MaterialState.STORING: "正在保存", MaterialState.UPLOADED: "待确认", MaterialState.CONFIRMED: "已确认，等待上链存证",
    MaterialState.ANCHORED: "已上链存证", MaterialState.SUPERSEDED: "已被新版本替代", MaterialState.WITHDRAWN: "已撤回",
    MaterialState.REVOKED: "已撤销", "expired": "已过期",
})
# A record's standing in the register, and the verdict colour it is shown in.
RECORD = _by_value({RecordState.VALID: ("有效", Status.VALID), RecordState.SUSPENDED: ("暂停", Status.INVALID),
                    RecordState.REVOKED: ("已撤销", Status.INVALID), RecordState.REMOVED: ("已移出", Status.SKIPPED)})

# A VALID verdict's warnings (chain/verdict.py WARNINGS): said beside the verdict, in words.
WARNING = _by_value({
    Reason.KEY_RETIRED: "签发密钥已按期更换；此前签发的企业码和存证仍然有效",
    Reason.SIGNED_BEFORE_COMPROMISE: "签发密钥后来被宣告泄露作废；此项签发于作废区块之前，仍然有效，请留意",
})

# Every reason a check can give, as a person reads it: what it means, and for what did not pass,
# what to do next. Pages show these, never the check's English message (kept for logs and the API).
R = Reason
REASON = _by_value({
    R.PARSED: "码的格式正确", R.CODE_NOT_QIYEMA: "这不是企业码。请扫描企业出示的企业码",
    R.CODE_ORIGIN: "码中的网址不是本平台的。请勿据此办理业务",
    R.CODE_ENCODING: "码的内容已损坏，无法识别。请对方重新出示", R.CODE_LENGTH: "码的内容不完整。请对方重新出示",
    R.CODE_VERSION: "码的版本不受支持。请对方刷新后重新出示",
    R.CODE_PROFILE: "码的签名算法与本平台不同（国密与国际算法不混用），不是本平台签发的企业码。请勿据此办理业务",
    R.CODE_KIND: "码的类型无法识别。请对方重新出示",
    R.CODE_FLAGS: "码的内容无法识别。请对方重新出示", R.CODE_KID: "码中的密钥编号无法识别。请勿据此办理业务",
    R.CODE_USCC: "码中的统一社会信用代码不正确。请勿据此办理业务", R.CODE_SIGNATURE: "码中的签名不完整。请勿据此办理业务",
    R.ORIGIN_MATCHES: "码由本平台签发", R.FOREIGN_ORIGIN: "码指向其他网站，不是本平台签发的企业码。请勿据此办理业务",
    R.SIGNED: "签名正确", R.UNKNOWN_KEY: "签名所用的密钥不是本平台的。请勿据此办理业务",
    R.BAD_SIGNATURE: "签名不符：码被伪造或篡改。请勿据此办理业务",
    R.NO_CODE_SIGNER: "该企业还没有可用的动态码密钥。请对方刷新后重新出示",
    R.KEY_ACTIVE: "签发密钥在用", R.KEY_ROTATED_OUT: "签发密钥已更换（旧版码）。请对方出示新码",
    R.KEY_RETIRED: "签发密钥已按期更换；此前签发的仍然有效",
    R.KEY_COMPROMISED: "签发密钥已被宣告泄露作废，此后签发的一律无效。请勿据此办理业务",
    R.SIGNED_BEFORE_COMPROMISE: "签发于密钥作废之前，仍然有效，请留意",
    R.REGISTRAR_ON_CHAIN: "签发机关经区块链确认", R.REGISTRAR_IN_KEYSET: "签发机关在主管部门签署的密钥清单中",
    R.NOT_REGISTRAR: "签发者不是登记机关。请勿据此办理业务", R.NOTARY: "存证由本平台的存证账户写入",
    R.NOT_NOTARY: "存证不是本平台写入的。请勿据此办理业务", R.CATEGORY_ISSUER: "由该类证照的发证机关签发",
    R.NOT_CATEGORY_ISSUER: "签发者无权签发此类证照。请勿据此办理业务",
    R.NOT_EXPIRED: "在有效期内", R.EXPIRED: "码已过期。请对方刷新后重新出示",
    R.NOT_YET_VALID: "码的生效时间还没到。请对方核对手机时间后重新出示", R.FRESH: "此码首次使用",
    R.REPLAYED: "此码已经用过（一次性码）。请对方重新亮码", R.UNKNOWN_NONCE: "平台没有发出过这个动态码。请对方重新亮码",
    R.ENTERPRISE_ACTIVE: "企业登记状态：存续", R.ENTERPRISE_ABNORMAL: "企业被列入经营异常名录。办理业务前请核实",
    R.ENTERPRISE_REVOKED: "企业营业执照已被吊销。请勿据此办理业务", R.ENTERPRISE_DEREGISTERED: "企业已注销。请勿据此办理业务",
    R.ENTERPRISE_UNKNOWN: "平台没有该企业的登记。请勿据此办理业务",
    R.CURRENT: "材料为当前有效版本", R.REVOKED: "材料已被撤销。请向企业索取有效材料",
    R.WITHDRAWN: "材料已被企业撤回或撤销。请向企业索取有效材料",
    R.IN_FORCE: "证照有效", R.RECORD_SUSPENDED: "证照已被暂停。请勿据此办理相关业务",
    R.RECORD_REVOKED: "证照已被撤销。请勿据此办理相关业务", R.RECORD_REMOVED: "证照已被移出登记",
    R.RECORD_EXPIRED: "证照已过有效期。请企业办理延续", R.RECORD_NOT_YET_VALID: "证照尚未生效",
    R.RECORD_REVOKED_ON_CHAIN: "证照已在区块链上被撤销。请勿据此办理相关业务",
    R.HASH_MATCHES: "文件与存证指纹一致",
    R.HASH_MISMATCH: "文件与存证指纹不一致：文件被改动过，或不是这份存证的文件。请勿据此办理业务",
    R.NO_CONTENT: "没有提供文件，只核验了存证本身", R.CONTENT_MATCHES: "内容与存证一致",
    R.CONTENT_ALTERED: "内容与存证不一致，已被改动。请勿据此办理业务", R.PATH_LEADS_TO_ROOT: "存证路径正确",
    R.PATH_MISMATCH: "存证路径不符：凭证被篡改。请勿据此办理业务", R.ROOT_ANCHORED: "已在区块链上存证",
    R.UNKNOWN_CONTRACT: "凭证指向的不是本平台信任的区块链合约，可能是伪造。请勿据此办理业务",
    R.BUNDLE_PROFILE: "凭证的摘要算法与本平台不同（国密与国际算法不混用），不是本平台出具的存证凭证。请勿据此办理业务",
    R.NODE_BEHIND: "区块链节点还没同步到存证所在的区块。请稍后再试",
    R.ROOT_NOT_ANCHORED: "区块链上没有这份存证。请勿据此办理业务", R.NOT_ON_CHAIN_YET: "尚未上链存证。请稍后再试",
    R.INDEX_OUT_OF_BATCH: "凭证中的位置超出存证批次：凭证被篡改。请勿据此办理业务",
    R.CHAIN_LIVE: "区块链运行正常", R.CHAIN_HALTED: "区块链暂停出块，最近的撤销可能还看不到。请稍后再试",
    R.MIRROR_CURRENT: "链上数据已同步", R.MIRROR_BEHIND: "链上数据同步滞后，最近的变更可能还看不到。请稍后再试",
    R.CHAIN_UNAVAILABLE: "暂时连不上区块链。请稍后再试", R.CHAIN_TIMEOUT: "区块链响应超时。请稍后再试",
    R.NODE_MALFORMED: "区块链节点应答异常。请稍后再试，或联系平台", R.DATABASE_UNAVAILABLE: "平台数据库暂时不可用。请稍后再试",
    R.WRONG_CHAIN: "凭证属于另一条区块链，本节点无法核验。请用对应的节点核验",
    R.NO_CHAIN: "没有连接区块链，此项未核验", R.OFFLINE: "离线核验，此项未检查",
})

# The banner of a verdict that is not VALID, by the reason that decided it: a code past its time
# or used once already is not a forgery, and a company struck off is not a forged code.
# (headline, what to do, colour: "INVALID" red, "CAUTION" amber, "ERROR" grey)
HEADLINE = _by_value({
    R.EXPIRED: ("码已过期", "请对方刷新后重新出示，不必怀疑真伪", "CAUTION"),
    R.NOT_YET_VALID: ("码还未生效", "请对方核对手机时间后重新出示", "CAUTION"),
    R.REPLAYED: ("此码已经用过", "一次性码只能核验一次，请对方重新亮码", "CAUTION"),
    R.NO_CODE_SIGNER: ("码无法核验", "请对方刷新后重新出示", "CAUTION"),
    R.ENTERPRISE_REVOKED: ("企业已被吊销", "营业执照已被吊销，请勿据此办理业务", "INVALID"),
    R.ENTERPRISE_DEREGISTERED: ("企业已注销", "该企业已经注销，请勿据此办理业务", "INVALID"),
})
DEFAULT_HEADLINE = _by_value({
    Status.INVALID: ("无效或伪造", "此码不是本平台签发的有效企业码，请勿据此办理业务", "INVALID"),
    Status.ERROR: ("暂时无法核验", "请稍后再试；此时不能判断真伪，也不能据此办理业务", "ERROR"),
    Status.SKIPPED: ("未能完整核验", "有必需的检查没有做，不能据此办理业务", "ERROR"),
})
# Reasons a VALID check gives that a person must still notice (amber, not a green tick).
CAUTION = frozenset({Reason.ENTERPRISE_ABNORMAL.value, *(w.value for w in WARNINGS)})

# The company's standing, shown first and apart from whether its code is genuine.
STANDING = {"ok": ("正常", "VALID"), "abnormal": ("经营异常", "CAUTION"), "lapsed": ("有证照失效", "CAUTION"),
            "revoked": ("已吊销", "INVALID"), "deregistered": ("已注销", "INVALID")}


def headline(verdict: dict) -> tuple[str, str, str]:
    """The banner of a verdict (`as_dict()` shape): headline, next step, colour."""
    status = verdict["status"]
    if status == Status.VALID.value:
        return VERDICT[status], "", "VALID"
    default = DEFAULT_HEADLINE.get(status, DEFAULT_HEADLINE[Status.ERROR.value])
    for check in verdict.get("checks", []):
        if check["status"] == status:  # the first check that made the verdict what it is
            return HEADLINE.get(check["reason"], default)
    return default


def standing(enterprise_status: str, records: list[dict]) -> str:
    """The company's standing: its register status first; then any permit lapsed (expired,
    suspended or revoked) makes an active company "lapsed"."""
    if enterprise_status in ("revoked", "deregistered", "abnormal"):
        return enterprise_status
    if any(r["css"] != "VALID" and r["state"] != "removed" for r in records):
        return "lapsed"
    return "ok"


TABLES = {"verdict": VERDICT, "word": WORD, "mark": MARK, "check": CHECK, "enterprise": ENTERPRISE,
          "material": MATERIAL, "record": RECORD, "warning": WARNING, "reason": REASON}
# What a line of an access log says someone did (`access_log.action`), in words.
ACTION = {
    "scan_view": "扫码查看", "material_read": "查看材料", "material_download": "下载材料", "material_proof": "查看存证",
    "material_verify": "核验材料", "material_reuses": "查看复用记录", "material_confirm": "确认材料",
    "material_withdraw": "撤回材料", "material_revoke": "撤销材料", "materials_list": "查看材料清单",
    "consent_grant": "授权", "consent_list": "查看授权", "grant_revoke": "撤销授权", "access_log": "查看访问记录",
    "application_create": "代办申请", "application_read": "查看办件", "application_verify": "核验办件材料",
    "applications_list": "查看办件清单", "code_issue": "生成企业码", "code_status": "查询企业码状态",
    "inspection": "现场检查", "record_issue": "签发证照", "record_proof": "查看证照存证", "record_status": "变更证照状态",
    "records_list": "查看证照清单", "consent_received": "查看授权材料清单", "consent_use": "使用码中的授权",
}
# Written to labels.js beside them: the verdict banner, the amber reasons, the standing.
SCRIPT_TABLES = {**TABLES, "headline": HEADLINE, "default_headline": DEFAULT_HEADLINE, "caution": sorted(CAUTION),
                 "standing": STANDING, "action": ACTION}
ENUMS = {"verdict": Status, "word": Status, "mark": Status, "check": CheckName, "enterprise": EnterpriseStatus,
         "material": MaterialState, "record": RecordState,
         "warning": WARNINGS, "reason": Reason}  # which enum (or set of members) each table labels (the drift test)

STATIC = Path(__file__).resolve().parent / "static"


def labels_js() -> str:
    body = json.dumps(SCRIPT_TABLES, ensure_ascii=False, indent=2, sort_keys=True)
    return ("// Generated from materials_api/web/labels.py (labels of the Python enums) by\n"
            "// `python -m materials_api.web.labels`; do not edit: a test fails when they differ.\n"
            f"export const LABELS = Object.freeze({body});\n")


if __name__ == "__main__":
    (STATIC / "labels.js").write_text(labels_js(), encoding="utf-8")
    print(f"wrote {STATIC / 'labels.js'}")
