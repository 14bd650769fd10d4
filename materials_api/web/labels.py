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

TABLES = {"verdict": VERDICT, "word": WORD, "mark": MARK, "check": CHECK, "enterprise": ENTERPRISE,
          "material": MATERIAL, "record": RECORD, "warning": WARNING}
ENUMS = {"verdict": Status, "word": Status, "mark": Status, "check": CheckName, "enterprise": EnterpriseStatus,
         "material": MaterialState, "record": RecordState,
         "warning": WARNINGS}  # which enum (or set of members) each table labels (the drift test)

STATIC = Path(__file__).resolve().parent / "static"


def labels_js() -> str:
    body = json.dumps(TABLES, ensure_ascii=False, indent=2, sort_keys=True)
    return ("// Generated from materials_api/web/labels.py (labels of the Python enums) by\n"
            "// `python -m materials_api.web.labels`; do not edit: a test fails when they differ.\n"
            f"export const LABELS = Object.freeze({body});\n")


if __name__ == "__main__":
    (STATIC / "labels.js").write_text(labels_js(), encoding="utf-8")
    print(f"wrote {STATIC / 'labels.js'}")
