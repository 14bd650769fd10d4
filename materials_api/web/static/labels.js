// Generated from materials_api/web/labels.py (labels of the Python enums) by
// `python -m materials_api.web.labels`; do not edit: a test fails when they differ.
export const LABELS = Object.freeze({
  "action": {
    "access_log": "查看访问记录",
    "application_create": "代办申请",
    "application_read": "查看办件",
    "application_verify": "核验办件材料",
    "applications_list": "查看办件清单",
    "code_issue": "生成企业码",
    "code_status": "查询企业码状态",
    "consent_grant": "授权",
    "consent_list": "查看授权",
    "consent_received": "查看授权材料清单",
    "consent_use": "使用码中的授权",
    "grant_revoke": "撤销授权",
    "inspection": "现场检查",
    "material_confirm": "确认材料",
    "material_download": "下载材料",
    "material_proof": "查看存证",
    "material_read": "查看材料",
    "material_reuses": "查看复用记录",
    "material_revoke": "撤销材料",
    "material_verify": "核验材料",
    "material_withdraw": "撤回材料",
    "materials_list": "查看材料清单",
    "record_issue": "签发证照",
    "record_proof": "查看证照存证",
    "record_status": "变更证照状态",
    "records_list": "查看证照清单",
    "scan_view": "扫码查看"
  },
  "caution": [
    "enterprise_abnormal",
    "key_retired",
    "signed_before_compromise"
  ],
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
  "default_headline": {
    "ERROR": [
      "暂时无法核验",
      "请稍后再试；此时不能判断真伪，也不能据此办理业务",
      "ERROR"
    ],
    "INVALID": [
      "无效或伪造",
      "此码不是本平台签发的有效企业码，请勿据此办理业务",
      "INVALID"
    ],
    "SKIPPED": [
      "未能完整核验",
      "有必需的检查没有做，不能据此办理业务",
      "ERROR"
    ]
  },
  "enterprise": {
    "abnormal": "经营异常",
    "active": "存续",
    "deregistered": "注销",
    "revoked": "吊销"
  },
  "headline": {
    "enterprise_deregistered": [
      "企业已注销",
      "该企业已经注销，请勿据此办理业务",
      "INVALID"
    ],
    "enterprise_revoked": [
      "企业已被吊销",
      "营业执照已被吊销，请勿据此办理业务",
      "INVALID"
    ],
    "expired": [
      "码已过期",
      "请对方刷新后重新出示，不必怀疑真伪",
      "CAUTION"
    ],
    "no_code_signer": [
      "码无法核验",
      "请对方刷新后重新出示",
      "CAUTION"
    ],
    "not_yet_valid": [
      "码还未生效",
      "请对方核对手机时间后重新出示",
      "CAUTION"
    ],
    "replayed": [
      "此码已经用过",
      "一次性码只能核验一次，请对方重新亮码",
      "CAUTION"
    ]
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
  "reason": {
    "bad_signature": "签名不符：码被伪造或篡改。请勿据此办理业务",
    "bundle_profile": "凭证的摘要算法与本平台不同（国密与国际算法不混用），不是本平台出具的存证凭证。请勿据此办理业务",
    "category_issuer": "由该类证照的发证机关签发",
    "chain_halted": "区块链暂停出块，最近的撤销可能还看不到。请稍后再试",
    "chain_live": "区块链运行正常",
    "chain_timeout": "区块链响应超时。请稍后再试",
    "chain_unavailable": "暂时连不上区块链。请稍后再试",
    "code_encoding": "码的内容已损坏，无法识别。请对方重新出示",
    "code_flags": "码的内容无法识别。请对方重新出示",
    "code_kid": "码中的密钥编号无法识别。请勿据此办理业务",
    "code_kind": "码的类型无法识别。请对方重新出示",
    "code_length": "码的内容不完整。请对方重新出示",
    "code_not_qiyema": "这不是企业码。请扫描企业出示的企业码",
    "code_origin": "码中的网址不是本平台的。请勿据此办理业务",
    "code_profile": "码的签名算法与本平台不同（国密与国际算法不混用），不是本平台签发的企业码。请勿据此办理业务",
    "code_signature": "码中的签名不完整。请勿据此办理业务",
    "code_uscc": "码中的统一社会信用代码不正确。请勿据此办理业务",
    "code_version": "码的版本不受支持。请对方刷新后重新出示",
    "content_altered": "内容与存证不一致，已被改动。请勿据此办理业务",
    "content_matches": "内容与存证一致",
    "current": "材料为当前有效版本",
    "database_unavailable": "平台数据库暂时不可用。请稍后再试",
    "enterprise_abnormal": "企业被列入经营异常名录。办理业务前请核实",
    "enterprise_active": "企业登记状态：存续",
    "enterprise_deregistered": "企业已注销。请勿据此办理业务",
    "enterprise_revoked": "企业营业执照已被吊销。请勿据此办理业务",
    "enterprise_unknown": "平台没有该企业的登记。请勿据此办理业务",
    "expired": "码已过期。请对方刷新后重新出示",
    "foreign_origin": "码指向其他网站，不是本平台签发的企业码。请勿据此办理业务",
    "fresh": "此码首次使用",
    "hash_matches": "文件与存证指纹一致",
    "hash_mismatch": "文件与存证指纹不一致：文件被改动过，或不是这份存证的文件。请勿据此办理业务",
    "in_force": "证照有效",
    "index_out_of_batch": "凭证中的位置超出存证批次：凭证被篡改。请勿据此办理业务",
    "key_active": "签发密钥在用",
    "key_compromised": "签发密钥已被宣告泄露作废，此后签发的一律无效。请勿据此办理业务",
    "key_retired": "签发密钥已按期更换；此前签发的仍然有效",
    "key_rotated_out": "签发密钥已更换（旧版码）。请对方出示新码",
    "mirror_behind": "链上数据同步滞后，最近的变更可能还看不到。请稍后再试",
    "mirror_current": "链上数据已同步",
    "no_chain": "没有连接区块链，此项未核验",
    "no_code_signer": "该企业还没有可用的动态码密钥。请对方刷新后重新出示",
    "no_content": "没有提供文件，只核验了存证本身",
    "node_behind": "区块链节点还没同步到存证所在的区块。请稍后再试",
    "node_malformed": "区块链节点应答异常。请稍后再试，或联系平台",
    "not_category_issuer": "签发者无权签发此类证照。请勿据此办理业务",
    "not_expired": "在有效期内",
    "not_notary": "存证不是本平台写入的。请勿据此办理业务",
    "not_on_chain_yet": "尚未上链存证。请稍后再试",
    "not_registrar": "签发者不是登记机关。请勿据此办理业务",
    "not_yet_valid": "码的生效时间还没到。请对方核对手机时间后重新出示",
    "notary": "存证由本平台的存证账户写入",
    "offline": "离线核验，此项未检查",
    "origin_matches": "码由本平台签发",
    "parsed": "码的格式正确",
    "path_leads_to_root": "存证路径正确",
    "path_mismatch": "存证路径不符：凭证被篡改。请勿据此办理业务",
    "record_expired": "证照已过有效期。请企业办理延续",
    "record_not_yet_valid": "证照尚未生效",
    "record_removed": "证照已被移出登记",
    "record_revoked": "证照已被撤销。请勿据此办理相关业务",
    "record_revoked_on_chain": "证照已在区块链上被撤销。请勿据此办理相关业务",
    "record_suspended": "证照已被暂停。请勿据此办理相关业务",
    "registrar_in_keyset": "签发机关在主管部门签署的密钥清单中",
    "registrar_on_chain": "签发机关经区块链确认",
    "replayed": "此码已经用过（一次性码）。请对方重新亮码",
    "revoked": "材料已被撤销。请向企业索取有效材料",
    "root_anchored": "已在区块链上存证",
    "root_not_anchored": "区块链上没有这份存证。请勿据此办理业务",
    "signed": "签名正确",
    "signed_before_compromise": "签发于密钥作废之前，仍然有效，请留意",
    "unknown_contract": "凭证指向的不是本平台信任的区块链合约，可能是伪造。请勿据此办理业务",
    "unknown_key": "签名所用的密钥不是本平台的。请勿据此办理业务",
    "unknown_nonce": "平台没有发出过这个动态码。请对方重新亮码",
    "withdrawn": "材料已被企业撤回或撤销。请向企业索取有效材料",
    "wrong_chain": "凭证属于另一条区块链，本节点无法核验。请用对应的节点核验"
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
  "standing": {
    "abnormal": [
      "经营异常",
      "CAUTION"
    ],
    "deregistered": [
      "已注销",
      "INVALID"
    ],
    "lapsed": [
      "有证照失效",
      "CAUTION"
    ],
    "ok": [
      "正常",
      "VALID"
    ],
    "revoked": [
      "已吊销",
      "INVALID"
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
