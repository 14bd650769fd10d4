"""The page a scanned static code opens: mobile-first, Chinese, readable at a glance.

Server-rendered with inline CSS (no external CDN, no fonts fetched). A copied code pointing at
another host, or one signed by an unknown key, shows a red "not genuine" page, never a page that
looks genuine."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from codes.verify import Status

from ..deps import CodesDep

router = APIRouter(tags=["pages"], include_in_schema=False)

_LABEL = {
    Status.VALID: ("真实有效", "#1b5e20", "#e8f5e9"),
    Status.INVALID: ("无效或伪造", "#b71c1c", "#ffebee"),
    Status.ERROR: ("暂时无法核验", "#8d6e00", "#fff8e1"),
}
_CHECK = {"format": "格式", "origin": "来源网址", "signature": "签名", "key": "密钥", "issuer": "签发机关",
          "expiry": "有效期", "replay": "一次性", "status": "登记状态"}
_MARK = {"VALID": "✔", "INVALID": "✘", "ERROR": "!", "SKIPPED": "–"}
_ENTERPRISE_STATUS = {"active": "存续", "abnormal": "经营异常", "revoked": "吊销", "deregistered": "注销"}

_CSS = """
body{margin:0;font-family:system-ui,-apple-system,'PingFang SC','Noto Sans SC','WenQuanYi Micro Hei',sans-serif;
background:#f5f5f5;color:#1a1a1a}
main{max-width:480px;margin:0 auto;padding:16px}
.banner{border-radius:12px;padding:20px;text-align:center}
.banner h1{margin:0;font-size:28px}
.card{background:#fff;border-radius:12px;padding:16px;margin-top:12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.name{font-size:20px;font-weight:700}.uscc{font-family:monospace;font-size:15px;color:#555;margin-top:4px}
ul{list-style:none;padding:0;margin:0}li{display:flex;gap:8px;padding:8px 0;border-bottom:1px solid #eee}
li:last-child{border-bottom:0}.m{width:1.4em;text-align:center;font-weight:700}
.VALID .m{color:#1b5e20}.INVALID .m{color:#b71c1c}.ERROR .m{color:#8d6e00}.SKIPPED .m{color:#777}
small{color:#555}footer{text-align:center;color:#777;font-size:12px;margin:16px 0}
"""


@router.get("/V/{payload}", response_class=HTMLResponse)
@router.get("/v/{payload}", response_class=HTMLResponse)
def verification_page(payload: str, request: Request, service: CodesDep):
    # Verify the code exactly as it was scanned: this host, this path.
    scanned = f"{request.url.scheme}://{request.url.netloc}/V/{payload}"
    verdict = service.verify(scanned)
    label, ink, background = _LABEL.get(verdict.status, _LABEL[Status.ERROR])
    enterprise = ""
    if verdict.enterprise and verdict.status != Status.INVALID:
        e = verdict.enterprise
        enterprise = (f'<section class="card"><div class="name">{escape(e["name"])}</div>'
                      f'<div class="uscc">统一社会信用代码 {escape(e["uscc"])}</div>'
                      f'<div>登记状态：<strong>{_ENTERPRISE_STATUS.get(e["status"], escape(e["status"]))}</strong></div></section>')
    checks = "".join(
        f'<li class="{c.status.value}"><span class="m" aria-hidden="true">{_MARK[c.status.value]}</span>'
        f'<span><strong>{_CHECK.get(c.name, escape(c.name))}</strong> <small>{escape(c.status.value)}</small><br>'
        f'<small>{escape(c.message)}</small></span></li>'
        for c in verdict.checks
    )
    warning = ""
    if verdict.status == Status.INVALID:
        warning = '<p>此码不是本平台签发的有效企业码，请勿据此办理业务。</p>'
    html = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>企业码核验 · {label}</title>
<style>{_CSS}</style></head><body><main>
<section class="banner" style="background:{background};color:{ink}" role="status">
<h1>{label}</h1>{warning}</section>
{enterprise}
<section class="card" aria-label="核验项目"><ul>{checks}</ul></section>
<footer>企业码 · 材料银行 Qiyema — 核验结果由平台实时生成</footer>
</main></body></html>"""
    status_code = 200 if verdict.status == Status.VALID else (503 if verdict.status == Status.ERROR else 200)
    return HTMLResponse(html, status_code=status_code)
