// Generated from materials_api/web/labels.py (labels of the Python enums) by
// `python -m materials_api.web.labels`; do not edit: a test fails when they differ.
export const LABELS = Object.freeze({
  "check": {
    "anchor": "链上存证",
    "expiry": "有效期",
    "format": "格式",
    "integrity": "内容完整",
    "issuer": "签发机关",
    "key": "密钥",
    "liveness": "区块链运行",
    "origin": "来源网址",
    "proof": "存证路径",
    "replay": "一次性",
    "signature": "签名",
    "status": "登记状态"
  },
  "enterprise": {
    "abnormal": "经营异常",
    "active": "存续",
    "deregistered": "注销",
    "revoked": "吊销"
  },
  "mark": {
    "ERROR": "!",
    "INVALID": "✘",
    "SKIPPED": "–",
    "VALID": "✔"
  },
  "material": {
    "anchored": "已上链存证",
    "confirmed": "已确认，等待上链存证",
    "expired": "已过期",
    "revoked": "已撤销",
    "storing": "正在保存",
    "superseded": "已被新版本替代",
    "uploaded": "待确认",
    "withdrawn": "已撤回"
  },
  "record": {
    "removed": [
      "已移出",
      "SKIPPED"
    ],
    "revoked": [
      "已撤销",
      "INVALID"
    ],
    "suspended": [
      "暂停",
      "INVALID"
    ],
    "valid": [
      "有效",
      "VALID"
    ]
  },
  "verdict": {
    "ERROR": "暂时无法核验",
    "INVALID": "无效或伪造",
    "SKIPPED": "未核验",
    "VALID": "真实有效"
  },
  "warning": {
    "key_retired": "签发密钥已按期更换；此前签发的企业码和存证仍然有效",
    "signed_before_compromise": "签发密钥后来被宣告泄露作废；此项签发于作废区块之前，仍然有效，请留意"
  },
  "word": {
    "ERROR": "无法核验",
    "INVALID": "未通过",
    "SKIPPED": "未检查",
    "VALID": "通过"
  }
});
