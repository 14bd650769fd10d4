// The inspector's phone page: scan a code, read the regulatory view with clear marks, record an
// inspection with findings and a photo. On a weak network the verdict says what it could not
// check, and an inspection that cannot be sent is kept on the phone and sent when back online.
import {LABELS} from './labels.js';
import {Q} from './app.js';

(() => {
  const {api, message, esc, day, when, $, fieldError, clearErrors, formMessage, decodeFile, scanCamera, verdictHtml, NetworkError} = Q;
  const app = $('#app');
  const QUEUE = 'qiyema-inspections';
  let scanned = null;
  app.innerHTML = `
  <div class="grid">
    <section class="card" aria-labelledby="scan-h"><h2 id="scan-h">扫码核验</h2>
      <button type="button" id="scan-btn" class="block">打开摄像头扫码</button>
      <label for="code-photo">或拍摄 / 选择企业码照片</label><input id="code-photo" type="file" accept="image/*" capture="environment">
      <video id="video" hidden playsinline muted aria-label="摄像头画面"></video>
      <div id="verdict" aria-live="polite" tabindex="-1"></div></section>
    <section class="card" aria-labelledby="rec-h"><h2 id="rec-h">记录检查</h2>
      <form id="inspect-form" novalidate>
        <p class="note" id="target">请先扫码确定检查对象</p>
        <label for="result">检查结论</label>
        <select id="result"><option value="">请选择</option><option value="passed">未发现问题</option>
          <option value="rectify">责令整改</option><option value="case_opened">立案调查</option></select>
        <label for="findings">检查情况</label><textarea id="findings" maxlength="2000"></textarea>
        <label for="photo">现场照片</label><input id="photo" type="file" accept="image/jpeg,image/png" capture="environment">
        <button type="submit" id="send">提交检查记录</button></form>
      <div id="queued" aria-live="polite"></div></section>
    <section class="card wide" aria-labelledby="visits-h"><h2 id="visits-h">以往检查</h2>
      <ul class="list" id="visits" aria-live="polite"><li class="note">扫码后显示该企业的检查记录</li></ul></section>
  </div>`;

  function showView(v) {
    const e = v.view && v.view.enterprise;
    let html = verdictHtml(v);
    if (e) html = `<p><strong>${esc(e.name)}</strong><br><span class="note">${esc(e.uscc)}</span></p>` + html;
    const view = v.view || {};
    for (const [group, title] of [['licence', '营业执照'], ['permit', '许可证'], ['regulatory', '监管信息']]) {
      const rows = view[group] || [];
      if (!rows.length) continue;
      html += `<h3>${title}</h3><ul class="list">` + rows.map(r => {
        const st = r.verdict ? r.verdict.status : 'SKIPPED';
        const mark = LABELS.mark[st];
        const word = {VALID: LABELS.record.valid[0], INVALID: r.status === 'revoked' ? LABELS.record.revoked[0] : '无效',
                      ERROR: LABELS.word.ERROR, SKIPPED: ''}[st];
        return `<li class="${st}"><span class="m" aria-hidden="true">${mark}</span><strong>${esc(r.kind_name)}</strong> ${word}
          <br><span class="note">${r.number ? '编号 ' + esc(r.number) + ' · ' : ''}有效期至 ${day(r.valid_until)}</span></li>`;
      }).join('') + '</ul>';
    }
    $('#verdict').innerHTML = html;
    $('#verdict').focus();
  }

  // Past visits, newest first: the result in its colour, when, what was found, the photo as witnessed.
  const RESULT_CLASS = {passed: 'VALID', rectify: 'CAUTION', case_opened: 'INVALID'};
  async function loadVisits(uscc) {
    const r = await api('GET', '/api/v1/records?uscc=' + encodeURIComponent(uscc));
    if (!r.ok) { $('#visits').innerHTML = '<li class="error" role="alert">' + esc(message(r.data, r.status)) + '</li>'; return; }
    const visits = r.data.filter(x => x.kind === 'inspection').sort((a, b) => b.id - a.id);
    $('#visits').innerHTML = visits.map(v => `<li class="${RESULT_CLASS[v.data.result] || 'ERROR'}" data-visit="${v.id}">
      <span><strong>${esc(v.data.result_name || v.data.result)}</strong> · ${v.issued_at ? when(v.issued_at) : ''}
      <br>${esc(v.data.findings)}${v.data.photo_sha256 ? `<br><img class="photo" src="/api/v1/inspections/${v.id}/photo"
        alt="现场照片（记录 ${v.id}）" loading="lazy">` : ''}</span></li>`).join('') || '<li class="note" id="no-visits">该企业还没有检查记录</li>';
  }

  async function verify(text) {
    $('#verdict').innerHTML = '<p>正在核验…</p>';
    // A new scan is a new situation: what was said about the last one goes (the company inspected
    // stays until a scan names another, or the network is down and the inspection waits here).
    clearErrors($('#inspect-form')); $('#inspect-form').querySelectorAll('.ok').forEach(x => x.remove());
    try {
      const r = await api('POST', '/api/v1/verify/code', {code: text}, 8000);
      if (!r.ok) { $('#verdict').innerHTML = '<p class="error" role="alert">' + esc(message(r.data, r.status)) + '</p>'; return; }
      showView(r.data);
      document.body.dataset.verdict = r.data.status;
      if (r.data.status === 'INVALID') { scanned = null; $('#target').textContent = '请先扫码确定检查对象'; }
      if (r.data.uscc && r.data.status !== 'INVALID') {
        scanned = {uscc: r.data.uscc, name: r.data.view && r.data.view.enterprise ? r.data.view.enterprise.name : r.data.uscc};
        $('#target').textContent = '检查对象：' + scanned.name + '（' + scanned.uscc + '）';
        await loadVisits(scanned.uscc);
      }
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      // Nothing could be asked: say exactly that, never "valid" or "forged".
      $('#verdict').innerHTML = `<p class="verdict ERROR">${LABELS.verdict.ERROR}</p><p class="error" role="alert">${esc(err.message)}：
        未能检查签名、签发机关、登记状态和许可证状态。请在网络恢复后重新扫码，不要据此判断真伪。</p>`;
      document.body.dataset.verdict = 'OFFLINE';
    }
  }
  $('#scan-btn').addEventListener('click', async () => {
    try { await scanCamera($('#video'), verify); }
    catch (e) { $('#verdict').innerHTML = '<p class="error" role="alert">无法打开摄像头，请改用照片</p>'; }
  });
  $('#code-photo').addEventListener('change', async e => {
    const f = e.target.files[0]; if (!f) return;
    e.target.value = '';  // the same photo chosen again must scan again
    const text = await decodeFile(f);
    if (!text) { clearErrors(app); return fieldError($('#code-photo'), '照片中没有找到二维码，请靠近一些重拍'); }
    await verify(text);
  });

  // Inspections that could not be sent wait on the phone (photo included) until the network returns.
  function queued() { try { return JSON.parse(localStorage.getItem(QUEUE) || '[]'); } catch (e) { return []; } }
  function renderQueue() {
    const q = queued();
    $('#queued').innerHTML = q.length ? `<p class="note" id="queue-note">${q.length} 条检查记录待网络恢复后自动提交</p>` : '';
  }
  async function send(entry) {
    const data = new FormData();
    data.append('uscc', entry.uscc); data.append('result', entry.result); data.append('findings', entry.findings);
    const blob = await (await fetch(entry.photo)).blob();
    data.append('file', blob, entry.photoName);
    return api('POST', '/api/v1/inspections', data, 30000);
  }
  async function flush() {
    const q = queued(); const left = [];
    for (const entry of q) {
      try { const r = await send(entry); if (!r.ok && r.status >= 500) left.push(entry); }
      catch (e) { left.push(entry); }
    }
    localStorage.setItem(QUEUE, JSON.stringify(left));
    renderQueue();
  }
  window.addEventListener('online', flush);

  $('#inspect-form').addEventListener('submit', async e => {
    e.preventDefault(); const form = e.target; clearErrors(form);
    if (!scanned) return fieldError($('#result'), '请先扫码确定检查对象');
    if (!$('#result').value) return fieldError($('#result'), '请选择检查结论');
    const findings = $('#findings').value.trim();
    if (!findings) return fieldError($('#findings'), '请填写检查情况');
    const photo = $('#photo').files[0];
    if (!photo) return fieldError($('#photo'), '请拍摄现场照片');
    if (!['image/jpeg', 'image/png'].includes(photo.type)) return fieldError($('#photo'), '现场照片须为 JPG 或 PNG 图片');
    const entry = {uscc: scanned.uscc, result: $('#result').value, findings, photoName: photo.name,
                   photo: await new Promise(ok => { const fr = new FileReader(); fr.onload = () => ok(fr.result); fr.readAsDataURL(photo); })};
    $('#send').disabled = true;
    try {
      const r = await send(entry);
      if (!r.ok) return fieldError(r.data && r.data.code === 'photo_not_image' ? $('#photo') : $('#findings'), message(r.data, r.status));
      form.reset();
      formMessage(form, '检查记录已提交并存证（记录号 ' + r.data.id + '）', true);
      await loadVisits(entry.uscc);
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      const q = queued(); q.push(entry); localStorage.setItem(QUEUE, JSON.stringify(q));
      form.reset(); formMessage(form, '网络不可用：检查记录已保存在本机，网络恢复后自动提交', true);
      renderQueue();
    } finally { $('#send').disabled = false; }
  });
  renderQueue();
  if (navigator.onLine && queued().length) flush();
  document.body.dataset.ready = '1';
})();
