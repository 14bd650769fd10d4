// The public scan page: read a code from the camera or a photo, verify it, show the verdict.
import {esc, verdictHtml} from './verdict.js';

const out = document.getElementById('result');
const video = document.getElementById('video');
const canvas = document.createElement('canvas');
let stream = null, done = false;

// Signed in (a bank's or an inspector's person), the page carries the session's CSRF token.
const csrf = document.querySelector('meta[name=csrf-token]')?.content;

function show(html, cls) { out.className = 'card ' + (cls || ''); out.innerHTML = html; out.focus(); }

async function verify(text) {
  done = true;
  if (stream) stream.getTracks().forEach(t => t.stop());
  show('<p>正在核验…</p>');
  try {
    const headers = {'content-type': 'application/json', ...(csrf ? {'X-CSRF-Token': csrf} : {})};
    const r = await fetch('/api/v1/verify/code', {method: 'POST', headers,
                                                  body: JSON.stringify({code: text})});
    const v = await r.json();
    const e = v.view && v.view.enterprise;
    const name = e ? '<p>' + esc(e.name) + '<br><small>' + esc(e.uscc) + '</small></p>' : '';
    const ours = (v.checks || []).some(c => c.name === 'origin' && c.status === 'VALID');
    const link = ours ? '<a class="button" href="' + esc(new URL(text).pathname) + '">查看完整核验页</a>' : '';
    video.hidden = true;
    show(verdictHtml(v) + name + consented(v.view && v.view.materials) + link, v.status);
    document.body.dataset.verdict = v.status;
  } catch (e) { show('<p>网络不可用，无法核验：' + esc(e) + '</p>', 'ERROR'); document.body.dataset.verdict = 'ERROR'; }
}

// A bank's person scanning a code that carries a consent sees the materials it covers (each
// downloadable, verified on the bank's page); a code without one, or one no longer valid, says so.
function consented(m) {
  if (!m || Array.isArray(m)) return '';
  if (m.status === 'none') return '<p class="note" id="consent-none">此码未携带材料授权。如需查看材料，请企业亮码时勾选授权本行，或在“企业材料银行”中授权。</p>';
  if (m.status !== 'granted') return '<p class="error" id="consent-denied">码中的授权已失效（码已过期、授权已撤销或不是授权给本机构），不能查看材料。请企业重新亮码。</p>';
  const until = new Intl.DateTimeFormat('zh-CN', {timeZone: 'Asia/Shanghai', dateStyle: 'short', timeStyle: 'short'})
    .format(new Date(m.expires_at * 1000));
  const rows = m.items.map(x => '<li data-material="' + esc(x.id) + '"><span><strong>' + esc(x.title) + '</strong><br><small>' +
    esc(x.folder_name) + '</small> · <a href="' + esc(x.content) + '">下载</a></span></li>').join('') || '<li>授权的材料尚未上链存证</li>';
  return '<section id="consented" data-grant="' + esc(m.grant_id) + '"><h2>企业授权查看的材料</h2><p class="note">用途：' + esc(m.purpose) +
    ' · 授权截至 ' + until + '（北京时间）</p><ul class="list">' + rows + '</ul><a class="button" href="/bank">到银行核验页逐份核验</a></section>';
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
    if (code) verify(code.data);
    else { show('<p>照片中没有找到二维码，请靠近一些重拍。</p>', 'INVALID'); document.body.dataset.verdict = 'NO_CODE'; }
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
  } catch (e) { show('<p>无法打开摄像头（' + esc(e.name) + '），请改用照片。</p>', 'ERROR'); }
});
