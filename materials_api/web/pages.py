"""Pages for people: the verification page a scanned static code opens, and a scan page that
reads a QR from the camera or a photo. Mobile-first, Chinese, readable at a glance; no external
CDN (the QR decoder, jsQR, is served from the project's npm packages), no fonts fetched.

A copied code pointing at another host, or one signed by an unknown key, gets a red "not
genuine" page that shows nothing of the enterprise it names."""

from __future__ import annotations

import time
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from codes.verify import Status
from materials_api.api.deps import CodesDep, ViewsDep

router = APIRouter(tags=["pages"], include_in_schema=False)

_LABEL = {
    Status.VALID: ("真实有效", "#1b5e20", "#e8f5e9"),
    Status.INVALID: ("无效或伪造", "#b71c1c", "#ffebee"),
    Status.ERROR: ("暂时无法核验", "#7a5d00", "#fff8e1"),
}
_CHECK = {"format": "格式", "origin": "来源网址", "signature": "签名", "key": "密钥", "issuer": "签发机关",
          "expiry": "有效期", "replay": "一次性", "status": "登记状态", "integrity": "内容完整", "anchor": "链上存证"}
_MARK = {"VALID": "✔", "INVALID": "✘", "ERROR": "!", "SKIPPED": "–"}
_ENTERPRISE_STATUS = {"active": "存续", "abnormal": "经营异常", "revoked": "吊销", "deregistered": "注销"}
_RECORD_STATUS = {"valid": ("有效", "VALID"), "suspended": ("暂停", "INVALID"), "revoked": ("已撤销", "INVALID"),
                  "removed": ("已移出", "SKIPPED")}

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,'PingFang SC','Noto Sans SC','WenQuanYi Micro Hei',sans-serif;
background:#f4f4f4;color:#1a1a1a;font-size:16px;line-height:1.5}
main{max-width:560px;margin:0 auto;padding:12px}
.banner{border-radius:12px;padding:18px;text-align:center}.banner h1{margin:0;font-size:28px}
.card{background:#fff;border-radius:12px;padding:14px 16px;margin-top:12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card h2{font-size:17px;margin:0 0 8px}
.name{font-size:20px;font-weight:700}.uscc{font-family:monospace;font-size:15px;color:#444}
ul{list-style:none;padding:0;margin:0}li{display:flex;gap:10px;padding:8px 0;border-bottom:1px solid #eee}
li:last-child{border-bottom:0}.m{min-width:1.6em;text-align:center;font-weight:700;font-size:18px}
.VALID .m,.VALID .tag{color:#1b5e20}.INVALID .m,.INVALID .tag{color:#b71c1c}.ERROR .m,.ERROR .tag{color:#7a5d00}
.SKIPPED .m,.SKIPPED .tag{color:#555}.tag{font-weight:700}
small{color:#444}a{color:#0b57d0}footer{text-align:center;color:#555;font-size:12px;margin:16px 0}
.warn{background:#fff3e0;border-left:4px solid #e65100;padding:8px 10px;margin-top:8px}
button,.button{display:block;text-align:center;text-decoration:none;font-size:17px;padding:12px 16px;
border-radius:10px;border:0;background:#0b57d0;color:#fff;width:100%;margin-top:12px;cursor:pointer}
li>span{overflow-wrap:anywhere;min-width:0}button:focus,input:focus,a:focus{outline:3px solid #ffb300;outline-offset:2px}
video,canvas{width:100%;border-radius:12px;background:#000}
"""


def _page(title: str, body: str, script: str = "") -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body><main>{body}"
            f"<footer>企业码 · 材料银行 Qiyema — 核验结果由平台实时生成</footer></main>{script}</body></html>")


def _record_row(item: dict) -> str:
    now = int(time.time())
    label, css = _RECORD_STATUS.get(item["status"], (item["status"], "SKIPPED"))
    if item["status"] == "valid" and item["valid_until"] and item["valid_until"] < now:
        label, css = "已过期", "INVALID"
    if item["verdict"]["status"] == "ERROR" and css == "VALID":
        label, css = "暂时无法核验", "ERROR"
    elif item["verdict"]["status"] == "INVALID" and css == "VALID":
        label, css = "核验未通过", "INVALID"
    until = time.strftime("%Y-%m-%d", time.gmtime(item["valid_until"])) if item["valid_until"] else "长期"
    number = f"<br><small>编号 {escape(item['number'])}</small>" if item.get("number") else ""
    return (f'<li class="{css}"><span class="m" aria-hidden="true">{_MARK[css]}</span><span>'
            f'<strong>{escape(item["kind_name"])}</strong> <span class="tag">{label}</span>{number}'
            f'<br><small>有效期至 {until} · <a href="{escape(item["proof"])}">查看存证</a></small></span></li>')


def _section(title: str, items: list[dict]) -> str:
    if not items:
        return ""
    return f'<section class="card" aria-label="{title}"><h2>{title}</h2><ul>{"".join(_record_row(i) for i in items)}</ul></section>'


@router.get("/V/{payload}", response_class=HTMLResponse)
@router.get("/v/{payload}", response_class=HTMLResponse)
def verification_page(payload: str, request: Request, service: CodesDep, views: ViewsDep):
    # Verify the code exactly as it was scanned: this host, this path.
    scanned = f"{request.url.scheme}://{request.url.netloc}/V/{payload}"
    verdict = service.verify(scanned)
    view = views.view(verdict, None)
    label, ink, background = _LABEL.get(verdict.status, _LABEL[Status.ERROR])
    parts = [f'<section class="banner" style="background:{background};color:{ink}" role="status"><h1>{label}</h1>']
    if verdict.status == Status.INVALID:
        parts.append("<p>此码不是本平台签发的有效企业码，或企业已注销/吊销，请勿据此办理业务。</p>")
    parts.append("</section>")
    if view:
        e = view["enterprise"]
        status = _ENTERPRISE_STATUS.get(e["status"], e["status"])
        warn = '<div class="warn">该企业被列入经营异常名录</div>' if e["status"] == "abnormal" else ""
        parts.append(f'<section class="card"><div class="name">{escape(e["name"])}</div>'
                     f'<div class="uscc">统一社会信用代码 {escape(e["uscc"])}</div>'
                     f'<div>登记状态：<strong>{status}</strong></div>{warn}</section>')
        licence = view.get("licence", [])
        for lic in licence:
            addresses = lic["data"].get("addresses") or []
            if addresses:
                parts.append('<section class="card" aria-label="一照多址"><h2>经营场所（一照多址）</h2><ul>'
                             + "".join(f"<li><span>{escape(str(a))}</span></li>" for a in addresses) + "</ul></section>")
        parts.append(_section("营业执照", licence))
        parts.append(_section("许可证", view.get("permit", [])))
        parts.append(_section("监管信息", view.get("regulatory", [])))
    checks = "".join(
        f'<li class="{c.status.value}"><span class="m" aria-hidden="true">{_MARK[c.status.value]}</span>'
        f'<span><strong>{_CHECK.get(c.name, escape(c.name))}</strong> <small>{escape(c.status.value)}</small><br>'
        f'<small>{escape(c.message)}</small></span></li>' for c in verdict.checks)
    parts.append(f'<section class="card"><details><summary>核验明细</summary><ul>{checks}</ul></details></section>')
    parts.append('<a class="button" href="/scan" role="button">扫描其他企业码</a>')
    status_code = 503 if verdict.status == Status.ERROR else 200
    return HTMLResponse(_page(f"企业码核验 · {label}", "".join(parts)), status_code=status_code)


_SCAN_SCRIPT = """
<script src="/assets/jsqr.js"></script>
<script>
const out = document.getElementById('result');
const video = document.getElementById('video');
const canvas = document.createElement('canvas');
let stream = null, done = false;
const MARK = {VALID: '✔', INVALID: '✘', ERROR: '!', SKIPPED: '–'};
const WORDS = {VALID: '通过', INVALID: '未通过', ERROR: '无法核验', SKIPPED: '未检查'};
const NAMES = {format: '格式', origin: '来源网址', signature: '签名', key: '密钥', issuer: '签发机关',
               expiry: '有效期', replay: '一次性', status: '登记状态'};
const escapeHtml = s => String(s).replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
function show(html, cls) { out.className = 'card ' + (cls || ''); out.innerHTML = html; out.focus(); }
async function verify(text) {
  done = true;
  if (stream) stream.getTracks().forEach(t => t.stop());
  show('<p>正在核验…</p>');
  try {
    const r = await fetch('/api/v1/verify/code', {method: 'POST', headers: {'content-type': 'application/json'},
                                                  body: JSON.stringify({code: text})});
    const v = await r.json();
    const label = {VALID: '真实有效', INVALID: '无效或伪造', ERROR: '暂时无法核验'}[v.status] || v.status;
    const name = v.view && v.view.enterprise ? escapeHtml(v.view.enterprise.name) + '<br><small>' + escapeHtml(v.view.enterprise.uscc) + '</small>' : '';
    const ours = v.checks && v.checks.some(c => c.name === 'origin' && c.status === 'VALID');
    const link = ours ? '<a class="button" href="' + new URL(text).pathname + '">查看完整核验页</a>' : '';
    video.hidden = true;
    show('<h2 class="' + v.status + '"><span class="tag">' + label + '</span></h2><p>' + name + '</p>' +
         '<ul>' + v.checks.map(c => '<li class="' + c.status + '"><span class="m" aria-hidden="true">' +
         MARK[c.status] + '</span><span><strong>' + (NAMES[c.name] || c.name) + '</strong> <small>' +
         (WORDS[c.status] || c.status) + '</small><br><small>' + escapeHtml(c.message) + '</small></span></li>'
         ).join('') + '</ul>' + link, v.status);
    document.body.dataset.verdict = v.status;
  } catch (e) { show('<p>网络不可用，无法核验：' + e + '</p>', 'ERROR'); document.body.dataset.verdict = 'ERROR'; }
}
function decode(img, w, h) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h);
  return jsQR(data.data, w, h, {inversionAttempts: 'attemptBoth'});
}
document.getElementById('photo').addEventListener('change', ev => {
  const file = ev.target.files[0]; if (!file) return;
  const img = new Image();
  img.onload = () => {
    const scale = Math.min(1, 1600 / Math.max(img.width, img.height));
    const code = decode(img, Math.round(img.width * scale), Math.round(img.height * scale));
    if (code) verify(code.data); else { show('<p>照片中没有找到二维码，请靠近一些重拍。</p>', 'INVALID'); document.body.dataset.verdict = 'NO_CODE'; }
  };
  img.src = URL.createObjectURL(file);
});
document.getElementById('camera').addEventListener('click', async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment'}});
    video.srcObject = stream; video.hidden = false; await video.play(); done = false;
    const tick = () => {
      if (done) return;
      if (video.videoWidth) { const c = decode(video, video.videoWidth, video.videoHeight); if (c) return verify(c.data); }
      requestAnimationFrame(tick);
    };
    tick();
  } catch (e) { show('<p>无法打开摄像头（' + e.name + '），请改用照片。</p>', 'ERROR'); }
});
</script>
"""


@router.get("/scan", response_class=HTMLResponse)
def scan_page():
    body = ('<section class="card"><h1 style="font-size:22px;margin:0">扫码核验企业码</h1>'
            '<p>用摄像头扫描，或上传一张企业码照片。</p>'
            '<button id="camera" type="button">打开摄像头扫码</button>'
            '<label for="photo" style="display:block;margin-top:12px">或选择照片：</label>'
            '<input id="photo" type="file" accept="image/*" capture="environment" style="width:100%;font-size:16px">'
            '<video id="video" hidden playsinline muted aria-label="摄像头画面"></video></section>'
            '<section id="result" class="card" tabindex="-1" aria-live="polite"><p>等待扫码…</p></section>')
    return HTMLResponse(_page("扫码核验企业码", body, _SCAN_SCRIPT))
