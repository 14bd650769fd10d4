// The service-window page: find a company (USCC or its code), file materials on its behalf after
// checking the originals, see an application's missing materials.
import {LABELS} from './labels.js';
import {Q} from './app.js';

(() => {
  const {api, upload, message, esc, day, when, $, fieldError, clearErrors, formMessage, decodeFile, scanCamera, STATES} = Q;
  const app = $('#app');
  let company = null;
  app.innerHTML = `
  <div class="grid">
    <section class="card" aria-labelledby="find-h"><h2 id="find-h">查找企业</h2>
      <form id="find-form" novalidate>
        <label for="uscc">统一社会信用代码或企业名称</label><input id="uscc" maxlength="100" autocomplete="off">
        <button type="submit">查找</button></form>
      <ul class="list" id="matches" aria-live="polite"></ul>
      <button type="button" id="scan-btn" class="secondary block">扫企业码</button>
      <label for="code-photo">或上传企业码照片</label><input id="code-photo" type="file" accept="image/*">
      <video id="video" hidden playsinline muted aria-label="摄像头画面"></video>
      <div id="company" aria-live="polite"></div></section>
    <section class="card" aria-labelledby="file-h"><h2 id="file-h">代为存入材料</h2>
      <form id="file-form" novalidate>
        <label for="file">材料文件</label><input id="file" type="file" accept="application/pdf,image/*,.doc,.docx">
        <label for="folder">材料分类</label><select id="folder"><option value="">自动识别</option></select>
        <label for="valid-until">有效期至（可选）</label><input id="valid-until" type="date">
        <label class="check" for="original"><input type="checkbox" id="original">已当面核对原件，与上传文件一致</label>
        <button type="submit" id="file-btn">存入（标记“原件已核验”）</button>
        <progress id="progress" max="1" value="0" hidden aria-label="上传进度"></progress></form>
      <ul class="list" id="filed"></ul></section>
    <section class="card wide" aria-labelledby="app-h"><h2 id="app-h">办件与回执</h2>
      <ul class="list" id="applications" aria-live="polite"><li class="note">查找企业后显示其办件</li></ul>
      <form id="app-form" novalidate><label for="application">按办件号查询</label><input id="application" inputmode="numeric">
        <button type="submit">查询</button></form>
      <div id="application-out" aria-live="polite"></div></section>
    <section class="card wide receipt" id="receipt" hidden aria-labelledby="receipt-h"></section>
  </div>`;

  async function find(uscc) {
    const out = $('#company');
    const r = await api('GET', '/api/v1/enterprises/' + encodeURIComponent(uscc));
    if (!r.ok) { company = null; return fieldError($('#uscc'), message(r.data, r.status)); }
    company = r.data;
    // Another company: what was said about the last one's filing goes.
    $('#file-form').querySelectorAll(':scope > p.ok, :scope > p.error').forEach(x => x.remove());
    $('#application-out').innerHTML = '';
    const status = LABELS.enterprise[company.status] || company.status;
    out.innerHTML = `<div class="ok" role="status" id="company-found"><strong>${esc(company.name)}</strong><br>${esc(company.uscc)} · ${status}</div>`;
    const m = await api('GET', '/api/v1/materials?uscc=' + encodeURIComponent(company.uscc));
    if (m.ok) renderFiled(m.data.items);
    await loadApplications();
    document.body.dataset.company = company.uscc;
  }

  // The company's applications, newest first, each with what is missing and a receipt (回执) to print.
  let applications = [];
  async function loadApplications() {
    $('#receipt').hidden = true;
    const r = await api('GET', '/api/v1/applications?uscc=' + encodeURIComponent(company.uscc));
    if (!r.ok) { $('#applications').innerHTML = '<li class="error" role="alert">' + esc(message(r.data, r.status)) + '</li>'; return; }
    applications = r.data;
    $('#applications').innerHTML = applications.map(a => `<li class="${a.missing.length ? 'CAUTION' : 'VALID'}" data-application="${a.id}">
      <span><strong>${esc(a.service_item_name)}</strong> · 办件号 ${a.id}<br><span class="note">${esc(a.department)} ·
      ${a.created_at ? when(a.created_at) : ''} · ${a.missing.length ? '缺 ' + a.missing.length + ' 份材料' : '材料齐全'}</span></span>
      <button type="button" class="small secondary" data-receipt="${a.id}">回执</button></li>`).join('')
      || '<li class="note">该企业还没有办件</li>';
  }
  function showReceipt(a) {
    const box = $('#receipt');
    const rows = a.items.map(i => `<tr><td>${esc(i.folder_name)}</td><td>${i.missing ? '缺件，请补交' : '已从材料银行调取（材料号 ' + i.material_id + '）'}</td></tr>`).join('');
    box.innerHTML = `<h2 id="receipt-h">材料接收回执</h2>
      <dl class="facts"><dt>办件号</dt><dd>${a.id}</dd><dt>办理事项</dt><dd>${esc(a.service_item_name)}</dd>
        <dt>受理部门</dt><dd>${esc(a.department)}</dd><dt>企业名称</dt><dd>${esc(company.name)}</dd>
        <dt>统一社会信用代码</dt><dd>${esc(company.uscc)}</dd><dt>申请时间</dt><dd>${a.created_at ? when(a.created_at) : ''}</dd></dl>
      <table class="receipt-items"><thead><tr><th scope="col">材料</th><th scope="col">状态</th></tr></thead><tbody>${rows}</tbody></table>
      <p>${a.missing.length ? '尚缺 ' + a.missing.length + ' 份材料，补齐后方可办理' : '材料齐全'}</p>
      <p class="note">经办：${esc(($('.who') || {}).textContent || '')} · 打印时间 ${when(Math.floor(Date.now() / 1000))}</p>
      <p class="note">材料的真实性可在本站首页用“核验文件”对照其存证核验。</p>
      <button type="button" id="print-receipt">打印回执</button>`;
    box.hidden = false; box.classList.add('printing');
    box.scrollIntoView();
  }
  $('#applications').addEventListener('click', e => {
    const id = Number(e.target.dataset.receipt); if (!id) return;
    showReceipt(applications.find(a => a.id === id));
  });
  $('#receipt').addEventListener('click', e => { if (e.target.id === 'print-receipt') window.print(); });
  function renderFiled(list) {
    $('#filed').innerHTML = list.map(x => `<li data-material="${x.id}"><strong>${esc(x.title)}</strong>
      <span class="badge s-${x.state}">${STATES[x.state] || x.state}</span><br><span class="note">${esc(x.folder_name)} ·
      有效期至 ${day(x.valid_until)}${x.label === 'original_checked' ? ' · 原件已核验' : ''}</span></li>`).join('') || '<li class="note">该企业还没有材料</li>';
  }
  // A USCC as people write it (in groups, with spaces or hyphens) is read without them; anything
  // with a Chinese character is a name to search. A wrong character is named, with its position.
  const USCC_CHARS = '0123456789ABCDEFGHJKLMNPQRTUWXY';
  function asUscc(text) {
    const code = text.replace(/[\s\-－]/g, '').toUpperCase();
    if (/[\u4e00-\u9fff]/.test(code) || code.length < 15) return null;
    return code;
  }
  async function search(name) {
    const r = await api('GET', '/api/v1/enterprises?limit=20&name=' + encodeURIComponent(name));
    if (!r.ok) return fieldError($('#uscc'), message(r.data, r.status));
    $('#matches').innerHTML = r.data.items.map(x => `<li><span><strong>${esc(x.name)}</strong><br><span class="note">${esc(x.uscc)}
      · ${esc(LABELS.enterprise[x.status] || x.status)}</span></span><button type="button" class="small" data-pick="${esc(x.uscc)}">选择</button></li>`).join('')
      || '<li class="note">没有名称包含“' + esc(name) + '”的企业</li>';
  }
  $('#matches').addEventListener('click', async e => {
    const uscc = e.target.dataset.pick; if (!uscc) return;
    $('#matches').innerHTML = ''; $('#uscc').value = uscc;
    try { await find(uscc); } catch (err) { fieldError($('#uscc'), err.message); }
  });
  $('#find-form').addEventListener('submit', async e => {
    e.preventDefault(); clearErrors(e.target); $('#matches').innerHTML = '';
    const text = $('#uscc').value.trim();
    if (!text) return fieldError($('#uscc'), '请输入统一社会信用代码或企业名称');
    const uscc = asUscc(text);
    try {
      if (uscc === null) {
        if (text.length < 2) return fieldError($('#uscc'), '企业名称至少输入 2 个字');
        return await search(text);
      }
      if (uscc.length !== 18) return fieldError($('#uscc'), '统一社会信用代码应为 18 位，现在是 ' + uscc.length + ' 位');
      const bad = [...uscc].findIndex(c => !USCC_CHARS.includes(c));
      if (bad >= 0) return fieldError($('#uscc'), '第 ' + (bad + 1) + ' 位的“' + uscc[bad] + '”不是统一社会信用代码使用的字符（不用 I、O、Z、S、V）');
      await find(uscc);
    } catch (err) { fieldError($('#uscc'), err.message); }
  });
  async function fromCode(text) {
    clearErrors($('#find-form'));
    try {
      const r = await api('POST', '/api/v1/verify/code', {code: text});
      if (!r.ok || !r.data.uscc) return fieldError($('#uscc'), r.ok ? '这不是有效的企业码' : message(r.data, r.status));
      if (r.data.status === 'INVALID') return fieldError($('#uscc'), '企业码无效或伪造，请核实');
      $('#uscc').value = r.data.uscc;
      await find(r.data.uscc);
    } catch (err) { fieldError($('#uscc'), err.message); }
  }
  $('#scan-btn').addEventListener('click', async () => {
    try { await scanCamera($('#video'), fromCode); }
    catch (e) { fieldError($('#uscc'), '无法打开摄像头，请改用照片'); }
  });
  $('#code-photo').addEventListener('change', async e => {
    const f = e.target.files[0]; if (!f) return;
    e.target.value = '';  // the same photo chosen again must scan again
    const text = await decodeFile(f);
    if (!text) return fieldError($('#code-photo'), '照片中没有找到二维码，请靠近一些重拍');
    await fromCode(text);
  });

  $('#file-form').addEventListener('submit', async e => {
    e.preventDefault(); const form = e.target; clearErrors(form);
    if (!company) return fieldError($('#uscc'), '请先查找企业');
    const file = $('#file').files[0];
    if (!file) return fieldError($('#file'), '请选择材料文件');
    if (file.size === 0) return fieldError($('#file'), '文件是空的，请重新选择');
    if (!$('#original').checked) return fieldError($('#original'), '请先核对原件，再勾选确认');
    const data = new FormData();
    data.append('file', file, file.name); data.append('uscc', company.uscc);
    if ($('#folder').value) data.append('folder', $('#folder').value);
    if ($('#valid-until').value) data.append('valid_until', $('#valid-until').value);
    const bar = $('#progress'); bar.hidden = false; $('#file-btn').disabled = true;
    try {
      const r = await upload('/api/v1/materials', data, f => { bar.value = f; });
      if (!r.ok) return fieldError(['valid_until_format', 'already_expired'].includes(r.data && r.data.code) ? $('#valid-until') : $('#file'), message(r.data, r.status));
      formMessage(form, '已存入：' + r.data.title + '（' + r.data.folder_name + '，原件已核验）', true);
      form.reset();
      const m = await api('GET', '/api/v1/materials?uscc=' + encodeURIComponent(company.uscc));
      if (m.ok) renderFiled(m.data.items);
    } catch (err) { fieldError($('#file'), err.message); }
    finally { bar.hidden = true; $('#file-btn').disabled = false; }
  });

  $('#app-form').addEventListener('submit', async e => {
    e.preventDefault(); clearErrors(e.target);
    const id = $('#application').value.trim();
    if (!/^\d+$/.test(id)) return fieldError($('#application'), '请输入数字办件号');
    const r = await api('GET', '/api/v1/applications/' + id);
    if (!r.ok) return fieldError($('#application'), message(r.data, r.status));
    const a = r.data;
    $('#application-out').innerHTML = `<h3>${esc(a.service_item_name)}（${esc(a.department)}）</h3>
      <ul class="list">${a.items.map(i => `<li class="${i.missing ? 'INVALID' : 'VALID'}"><span class="m" aria-hidden="true">${LABELS.mark[i.missing ? 'INVALID' : 'VALID']}</span>
      ${esc(i.folder_name)}：${i.missing ? '缺件' : '已调取（材料 ' + i.material_id + '）'}</li>`).join('')}</ul>
      <p>${a.missing.length ? '缺少 ' + a.missing.length + ' 份材料' : '材料齐全'}</p>`;
  });

  (async () => {
    const types = await api('GET', '/api/v1/material-types');
    $('#folder').insertAdjacentHTML('beforeend', types.data.map(t => '<option value="' + t.code + '">' + esc(t.name) + '</option>').join(''));
    document.body.dataset.ready = '1';
  })();
})();
