// The enterprise portal: 亮码, upload (drag and drop or camera) with progress, confirm with the
// suggested folder correctable, the material bank by folder, applications, consent, access log.
import {LABELS} from './labels.js';
import {Q} from './app.js';

(() => {
  const {api, upload, message, esc, day, clock, when, today, epoch, $, fieldError, clearErrors, formMessage, NetworkError, STATES} = Q;
  const app = $('#app');
  const SOON = 30 * 86400;
  const ACTIONS = LABELS.action;
  let folders = [], items = [], shownFolder = '';

  app.innerHTML = `
  <div class="grid">
    <section class="card" aria-labelledby="code-h"><h2 id="code-h">亮码</h2>
      <div id="replace-code" role="alert" hidden></div>
      <p class="note">出示动态企业码，供银行、窗口或检查人员扫码核验。码会在过期前自动刷新。</p>
      <div id="code" class="code" aria-live="polite"></div>
      <details id="code-consent"><summary>亮码时授权银行查看材料（可选）</summary>
        <label for="code-bank">授权给</label>
        <select id="code-bank"><option value="">不授权，只核验企业身份</option></select>
        <fieldset id="code-materials"></fieldset>
        <p class="note">授权随码失效：码过期后对方不能再查看。</p></details>
      <button id="show-code" type="button" class="block">亮码</button>
      <a class="button secondary" id="static-code" href="/api/v1/enterprises/${encodeURIComponent(app.dataset.scope)}/code.png"
        download="企业码-${esc(app.dataset.scope)}.png">下载静态企业码（打印张贴）</a></section>
    <section class="card" aria-labelledby="up-h"><h2 id="up-h">存入材料</h2>
      <form id="upload-form" novalidate>
        <div class="drop" id="drop">把文件拖到这里</div>
        <label for="file">选择文件（PDF、图片、Office 文档）</label>
        <input id="file" name="file" type="file" accept="application/pdf,image/*,.doc,.docx,.xls,.xlsx">
        <label for="camera-file">或用手机拍照</label>
        <input id="camera-file" type="file" accept="image/*" capture="environment">
        <label for="folder">材料分类（可不选，系统按文件名识别）</label>
        <select id="folder"><option value="">自动识别</option></select>
        <label for="title">材料名称（可选）</label><input id="title" maxlength="200">
        <label for="valid-until">有效期至（可选）</label><input id="valid-until" type="date">
        <button type="submit" id="upload-btn">上传</button>
        <progress id="progress" max="1" value="0" hidden aria-label="上传进度"></progress>
      </form>
      <h3>待确认</h3><ul class="list" id="pending"></ul></section>
    <section class="card wide" aria-labelledby="bank-h"><h2 id="bank-h">我的材料库</h2>
      <div class="folders" id="folders" role="group" aria-label="按分类查看"></div>
      <ul class="list" id="materials"></ul></section>
    <section class="card" aria-labelledby="records-h"><h2 id="records-h">我的证照与检查记录</h2>
      <ul class="list" id="records" aria-live="polite"></ul></section>
    <section class="card" aria-labelledby="apply-h"><h2 id="apply-h">办事</h2>
      <form id="apply-form" novalidate>
        <label for="service-item">办事事项</label><select id="service-item"><option value="">请选择</option></select>
        <button type="submit">发起办事（自动调取材料）</button></form>
      <ul class="list" id="applications"></ul></section>
    <section class="card" aria-labelledby="consent-h"><h2 id="consent-h">授权查看</h2>
      <form id="consent-form" novalidate>
        <label for="verifier">被授权机构（选择已在平台登记的银行）</label><select id="verifier"><option value="">请选择</option></select>
        <fieldset id="consent-materials" class="bare"><legend><strong>授权的材料</strong></legend></fieldset>
        <label for="purpose">用途</label><input id="purpose" maxlength="200" placeholder="如：开立对公账户">
        <label for="until">授权截止日期</label><input id="until" type="date">
        <button type="submit">授权</button></form>
      <ul class="list" id="grants"></ul></section>
    <section class="card wide" aria-labelledby="log-h"><h2 id="log-h">访问记录</h2>
      <figure id="log-chart" class="chart"></figure>
      <ul class="list" id="log"></ul></section>
  </div>`;

  // --- 亮码 -------------------------------------------------------------------------------------
  let codeTimer = null;
  // A code can carry a consent: the bank chosen here sees the ticked materials while the code lives
  // (each refresh carries it again), and nothing once it has expired.
  function codeScope() {
    const bank = $('#code-bank').value;
    if (!bank) return null;
    const ids = [...document.querySelectorAll('#code-materials input:checked')].map(x => Number(x.value));
    return {verifier_org: bank, material_ids: ids, purpose: '亮码授权'};
  }
  async function showCode() {
    clearTimeout(codeTimer); clearErrors($('#code-consent'));
    const scope = codeScope();
    if (scope && !scope.material_ids.length) {
      $('#code-consent').open = true;
      return fieldError($('#code-materials'), '请勾选授权对方查看的材料，或选择“不授权”');
    }
    try {
      const r = await api('POST', '/api/v1/codes/dynamic', {ttl_seconds: 300, ...(scope ? {scope} : {})});
      if (!r.ok) { $('#code').innerHTML = '<p class="error" role="alert">' + esc(message(r.data, r.status)) + '</p>'; return; }
      const until = clock(r.data.expires_at) + '（北京时间）';
      const carries = scope ? `<p class="ok" id="code-carries">本码授权 ${esc(scope.verifier_org)} 查看 ${scope.material_ids.length} 份材料</p>` : '';
      $('#code').innerHTML = r.data.svg + carries + '<p class="note" id="code-expiry">有效至 ' + until + '，过期前自动刷新</p>';
      $('#code').dataset.expiresAt = r.data.expires_at;
      codeTimer = setTimeout(showCode, Math.max(5, r.data.expires_at - Date.now() / 1000 - 30) * 1000);
    } catch (e) { $('#code').innerHTML = '<p class="error" role="alert">' + esc(e.message) + '，请稍后重试</p>'; }
  }
  $('#show-code').addEventListener('click', showCode);

  // A key that signed the printed code was declared compromised: that code now verifies INVALID.
  (async () => {
    try {
      const r = await api('GET', '/api/v1/codes/static/status');
      if (r.ok && r.data.replace_code) {
        const box = $('#replace-code');
        box.className = 'error';
        box.innerHTML = '<strong>请更换企业码</strong>：您张贴的企业码所用签名密钥已作废，扫码将显示无效。' +
          '新码已由登记机关重新签发，请到窗口领取或下载打印后替换。';
        box.hidden = false;
      }
    } catch (e) { /* the rest of the portal works without it */ }
  })();

  // --- upload -----------------------------------------------------------------------------------
  const form = $('#upload-form');
  const drop = $('#drop');
  ['dragenter', 'dragover'].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.add('over'); }));
  ['dragleave', 'drop'].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.remove('over'); }));
  drop.addEventListener('drop', e => { if (e.dataTransfer.files.length) { $('#file').files = e.dataTransfer.files;
    drop.textContent = '已选择：' + e.dataTransfer.files[0].name; } });
  form.addEventListener('submit', async e => {
    e.preventDefault();
    clearErrors(form);
    const file = $('#file').files[0] || $('#camera-file').files[0];
    if (!file) return fieldError($('#file'), '请选择要上传的文件');
    if (file.size === 0) return fieldError($('#file'), '文件是空的，请重新选择');
    const until = $('#valid-until').value;
    if (until && until <= today()) return fieldError($('#valid-until'), '有效期已过，请检查日期');
    const data = new FormData();
    data.append('file', file, file.name || 'photo.jpg');
    if ($('#folder').value) data.append('folder', $('#folder').value);
    if ($('#title').value.trim()) data.append('title', $('#title').value.trim());
    if (until) data.append('valid_until', until);
    const bar = $('#progress'); bar.hidden = false; bar.value = 0;
    $('#upload-btn').disabled = true;
    try {
      const r = await upload('/api/v1/materials', data, f => { bar.value = f; });
      if (!r.ok) {
        const target = ['valid_until_format', 'already_expired'].includes(r.data && r.data.code) ? $('#valid-until') : $('#file');
        fieldError(target, message(r.data, r.status));
      } else {
        formMessage(form, r.status === 200 ? '这份文件已在材料库中' : '已上传：' + r.data.title + '，请在下方确认分类', true);
        form.reset(); drop.textContent = '把文件拖到这里';
        await refresh();
      }
    } catch (err) { fieldError($('#file'), err.message); }
    finally { $('#upload-btn').disabled = false; bar.hidden = true; }
  });

  function folderOptions(selected) {
    return folders.map(f => '<option value="' + f.code + '"' + (f.code === selected ? ' selected' : '') + '>' + esc(f.name) + '</option>').join('');
  }

  function renderPending() {
    const pending = items.filter(m => m.state === 'uploaded');
    // A correction the person already made to another item survives this re-render.
    const chosen = {};
    document.querySelectorAll('#pending select').forEach(sel => { chosen[sel.id] = sel.value; });
    $('#pending').innerHTML = pending.length ? pending.map(m => `
      <li data-material="${m.id}"><strong>${esc(m.title)}</strong> <span class="note">${esc(m.file_name)}</span>
        <label for="fold-${m.id}">${m.classified ? '系统识别的分类（可更正）' : '分类'}</label>
        <select id="fold-${m.id}" ${m.supersedes_id ? 'disabled' : ''}>${folderOptions(chosen['fold-' + m.id] || m.folder)}</select>
        <a href="/api/v1/materials/${m.id}/content" download="${esc(m.file_name)}" data-preview="${m.id}">查看文件，确认无误</a>
        <button type="button" class="block" data-confirm="${m.id}">确认材料真实有效</button>
        <button type="button" class="small danger" data-discard="${m.id}">删除这份上传</button></li>`).join('')
      : '<li class="note">没有待确认的材料</li>';
  }
  // Two taps end a material: the first asks, the second does it (a pending upload is dropped; a
  // confirmed or anchored one is withdrawn, and revoked on chain: its proof then verifies as withdrawn).
  async function end(button, id, question) {
    if (button.dataset.armed !== '1') { button.dataset.armed = '1'; button.textContent = question; return; }
    const li = button.closest('li'); clearErrors(li);
    const r = await api('POST', `/api/v1/materials/${id}/withdraw`);
    if (!r.ok) return fieldError(button, message(r.data, r.status));
    await refresh();
  }
  $('#pending').addEventListener('click', async e => {
    if (e.target.dataset.discard) return end(e.target, e.target.dataset.discard, '再点一次确认删除');
    const id = e.target.dataset.confirm; if (!id) return;
    const li = e.target.closest('li'); clearErrors(li);
    try {
      const r = await api('POST', `/api/v1/materials/${id}/confirm`, {folder: $('#fold-' + id).value});
      if (!r.ok) return fieldError($('#fold-' + id), message(r.data, r.status));
      await refresh();
    } catch (err) { fieldError($('#fold-' + id), err.message); }
  });

  // --- the material bank ------------------------------------------------------------------------
  function stateBadge(m) {
    const now = Date.now() / 1000;
    let html = '<span class="badge s-' + m.state + '">' + (STATES[m.state] || m.state) + '</span>';
    if (m.valid_until && m.valid_until > now && m.valid_until - now < SOON && ['confirmed', 'anchored'].includes(m.state))
      html += '<span class="badge s-soon">' + Math.ceil((m.valid_until - now) / 86400) + ' 天后到期，请及时更新</span>';
    return html;
  }
  function renderBank() {
    const used = folders.filter(f => f.count > 0);
    const held = items.filter(m => m.state !== 'uploaded' && m.state !== 'storing');
    $('#folders').innerHTML = ['<button type="button" data-folder="" aria-pressed="' + (shownFolder === '') + '">全部 ' + held.length + '</button>']
      .concat(used.map(f => '<button type="button" data-folder="' + f.code + '" aria-pressed="' + (shownFolder === f.code) + '">' +
        esc(f.name) + ' ' + f.count + '</button>')).join('');
    // A dropped upload (withdrawn before it was ever confirmed: nothing to revoke) is gone from view.
    const shown = items.filter(m => m.state !== 'uploaded' && !(m.state === 'withdrawn' && !m.revocation_state) &&
                                    (!shownFolder || m.folder === shownFolder));
    $('#materials').innerHTML = shown.length ? shown.map(m => `
      <li data-material="${m.id}" data-state="${m.state}"><strong>${esc(m.title)}</strong> ${stateBadge(m)}
        <br><span class="note">${esc(m.folder_name)} · 第 ${m.version} 版 · 有效期至 ${day(m.valid_until)}
        ${m.label === 'original_checked' ? ' · 原件已核验' : ''} · 被复用 ${m.reuse_count} 次</span>
        ${m.proof_replaced_at ? `<br><span class="note">存证凭证已更换（${when(m.proof_replaced_at)}）：原签名密钥已声明泄露，旧凭证失效，请下载新的凭证</span>` : ''}
        <br>${m.anchored ? `<a href="/api/v1/materials/${m.id}/proof" download="${esc(m.file_name)}.proof.json" data-proof="${m.id}">下载存证凭证</a> · <a href="/certificates/materials/${m.id}" data-certificate="${m.id}">存证证书</a> · ` : ''}
        <a href="/api/v1/materials/${m.id}/content" download="${esc(m.file_name)}">下载原件</a> ·
        <button type="button" class="small secondary" data-reuses="${m.id}">谁使用过</button>
        ${['confirmed', 'anchored', 'expired'].includes(m.state) ? `<button type="button" class="small danger" data-withdraw="${m.id}">撤回</button>` : ''}
        ${['confirmed', 'anchored', 'expired'].includes(m.state) ? `<label for="ver-${m.id}"
          class="button small secondary inline-label">上传新版本</label>
          <input type="file" id="ver-${m.id}" class="sr-only" data-version="${m.id}" accept="application/pdf,image/*,.doc,.docx,.xls,.xlsx">` : ''}
        <div id="reuses-${m.id}" aria-live="polite"></div></li>`).join('')
      : '<li class="note">还没有材料</li>';
    const consentable = items.filter(m => m.state === 'anchored');
    $('#consent-materials').innerHTML = '<legend><strong>授权的材料</strong></legend>' + (consentable.length ? consentable.map(m =>
      `<label class="check" for="grant-${m.id}"><input type="checkbox" id="grant-${m.id}" value="${m.id}">${esc(m.title)}</label>`).join('')
      : '<p class="note" id="no-consentable">材料上链存证后才能授权</p>');
    const ticked = new Set([...document.querySelectorAll('#code-materials input:checked')].map(x => x.value));
    $('#code-materials').innerHTML = '<legend><strong>对方可查看的材料</strong></legend>' + (consentable.length ? consentable.map(m =>
      `<label class="check" for="code-grant-${m.id}"><input type="checkbox" id="code-grant-${m.id}" value="${m.id}"${ticked.has(String(m.id)) ? ' checked' : ''}>${esc(m.title)}</label>`).join('')
      : '<p class="note">材料上链存证后才能授权</p>');
  }
  $('#materials').addEventListener('change', async e => {
    const id = e.target.dataset.version; if (!id) return;
    const file = e.target.files[0]; if (!file) return;
    const li = e.target.closest('li'); clearErrors(li);
    if (file.size === 0) return fieldError(e.target, '文件是空的，请重新选择');
    const data = new FormData(); data.append('file', file, file.name);
    try {
      const r = await upload(`/api/v1/materials/${id}/versions`, data, () => {});
      if (!r.ok) return fieldError(e.target, message(r.data, r.status));
      await refresh();
      formMessage($('#upload-form'), '新版本已上传：' + r.data.title + '（第 ' + r.data.version + ' 版），请在下方确认', true);
    } catch (err) { fieldError(e.target, err.message); }
  });
  $('#folders').addEventListener('click', e => { if (e.target.dataset.folder !== undefined) { shownFolder = e.target.dataset.folder; renderBank(); } });
  $('#materials').addEventListener('click', async e => {
    if (e.target.dataset.withdraw) return end(e.target, e.target.dataset.withdraw, '再点一次确认撤回（撤回后他人不能再使用）');
    const id = e.target.dataset.reuses; if (!id) return;
    const out = $('#reuses-' + id);
    try {
      const r = await api('GET', `/api/v1/materials/${id}/reuses`);
      out.innerHTML = !r.ok ? '<p class="error">' + esc(message(r.data, r.status)) + '</p>' : r.data.length ?
        '<ul>' + r.data.map(x => '<li>' + esc(when(x.at)) + ' ' + esc(x.verifier_org) + '（' + esc(x.service_item) + '）</li>').join('') + '</ul>'
        : '<p class="note">还没有被复用</p>';
    } catch (err) { out.innerHTML = '<p class="error">' + esc(err.message) + '</p>'; }
  });

  // --- applications -----------------------------------------------------------------------------
  function renderApplication(a) {
    return `<li data-application="${a.id}"><strong>${esc(a.service_item_name)}</strong> <span class="note">办件号 ${a.id} · ${esc(a.department)}</span>
      <ul>${a.items.map(i => `<li class="${i.missing ? 'INVALID' : 'VALID'}"><span class="m" aria-hidden="true">${LABELS.mark[i.missing ? 'INVALID' : 'VALID']}</span>
        ${esc(i.folder_name)}：${i.missing ? '缺少，请先存入材料库' : '已自动调取'}</li>`).join('')}</ul></li>`;
  }
  $('#apply-form').addEventListener('submit', async e => {
    e.preventDefault(); const f = e.target; clearErrors(f);
    if (!$('#service-item').value) return fieldError($('#service-item'), '请选择办事事项');
    try {
      const r = await api('POST', '/api/v1/applications', {service_item: $('#service-item').value});
      if (!r.ok) return fieldError($('#service-item'), message(r.data, r.status));
      await loadApplications();
    } catch (err) { fieldError($('#service-item'), err.message); }
  });
  async function loadApplications() {
    const r = await api('GET', '/api/v1/applications');
    if (r.ok) $('#applications').innerHTML = r.data.map(renderApplication).join('');
  }

  // --- consent ----------------------------------------------------------------------------------
  $('#consent-form').addEventListener('submit', async e => {
    e.preventDefault(); const f = e.target; clearErrors(f);
    const verifier = $('#verifier').value.trim(), purpose = $('#purpose').value.trim(), until = $('#until').value;
    const ids = [...f.querySelectorAll('input[type=checkbox]:checked')].map(c => Number(c.value));
    if (!verifier) return fieldError($('#verifier'), '请选择被授权机构');
    if (!ids.length) return fieldError($('#consent-materials'), '请至少选择一份材料');
    if (!purpose) return fieldError($('#purpose'), '请填写用途');
    if (!until || until <= today()) return fieldError($('#until'), '授权截止日期必须晚于今天');
    try {
      const r = await api('POST', '/api/v1/consents', {verifier_organisation: verifier, material_ids: ids, purpose,
                                                      expires_at: until + 'T23:59:59+08:00'});
      if (!r.ok) return fieldError($('#verifier'), message(r.data, r.status));
      f.reset(); formMessage(f, '已授权 ' + verifier, true);
      await loadGrants();
    } catch (err) { fieldError($('#verifier'), err.message); }
  });
  async function loadGrants() {
    const r = await api('GET', '/api/v1/consents');
    if (!r.ok) return;
    $('#grants').innerHTML = r.data.map(g => `<li data-grant="${g.id}"><strong>${esc(g.verifier_organisation)}</strong>
      <span class="badge ${g.active ? 's-anchored' : 's-revoked'}">${g.active ? '有效' : (g.revoked ? '已撤销' : '已过期')}</span>
      <br><span class="note">${esc(g.purpose)} · ${g.material_ids.length} 份材料 · 截至 ${day(g.expires_at)}</span>
      ${g.active ? `<br><button type="button" class="small danger" data-revoke="${g.id}">撤销授权</button>` : ''}</li>`).join('')
      || '<li class="note">还没有授权</li>';
  }
  $('#grants').addEventListener('click', async e => {
    const id = e.target.dataset.revoke; if (!id) return;
    // Two taps: the first asks, the second revokes (a bank's access ends at once, for good).
    if (e.target.dataset.armed !== '1') { e.target.dataset.armed = '1'; e.target.textContent = '再点一次确认撤销'; return; }
    const r = await api('POST', `/api/v1/consents/${id}/revoke`);
    if (r.ok) await loadGrants();
  });

  // --- the company's own records: licence, permits, and what inspectors found ------------------------
  // A 责令整改 order reaches the company here, first and in red, with what was found and when.
  async function loadRecords() {
    const r = await api('GET', '/api/v1/records');
    if (!r.ok) return;
    const order = x => x.kind === 'inspection' ? (x.data.result === 'passed' ? 1 : 0) : 2;
    const rows = r.data.filter(x => x.status !== 'removed').sort((a, b) => order(a) - order(b));
    $('#records').innerHTML = rows.map(x => {
      if (x.kind === 'inspection') {
        const ok = x.data.result === 'passed';
        return `<li class="${ok ? 'VALID' : 'INVALID'}" data-record="${x.id}"><span><strong>${esc(x.kind_name)}</strong>
          <span class="tag">${esc(x.data.result_name || x.data.result)}</span>
          <br><span class="note">${x.issued_at ? esc(when(x.issued_at)) + ' · ' : ''}${esc(x.data.findings || '')}</span></span></li>`;
      }
      const [label, css] = LABELS.record[x.status] || [x.status, 'SKIPPED'];
      const expired = x.status === 'valid' && x.valid_until && x.valid_until < Date.now() / 1000;
      return `<li class="${expired ? 'INVALID' : css}" data-record="${x.id}"><span><strong>${esc(x.kind_name)}</strong>
        <span class="tag">${expired ? LABELS.material.expired : esc(label)}</span>
        <br><span class="note">${x.number ? '编号 ' + esc(x.number) + ' · ' : ''}有效期至 ${day(x.valid_until)} ·
        <a href="${x.certificate}">存证证书</a></span></span></li>`;
    }).join('') || '<li class="note">还没有证照或检查记录</li>';
  }

  // --- access log -------------------------------------------------------------------------------
  // Who read what, per week (the last 8, Monday to Sunday in Beijing): allowed in green, refused
  // in red, stacked. SVG attributes only (the page's policy allows no style attribute).
  function weeklyChart(entries) {
    const WEEK = 7 * 86400, now = Date.now() / 1000;
    const monday = t => { const d = new Date((t + 8 * 3600) * 1000); return Math.floor(t + 8 * 3600 - ((d.getUTCDay() + 6) % 7) * 86400 - (t + 8 * 3600) % 86400); };
    const thisWeek = monday(now);
    const weeks = Array.from({length: 8}, (_, i) => ({start: thisWeek - (7 - i) * WEEK, allowed: 0, denied: 0}));
    for (const x of entries) {
      const w = weeks.find(w => { const t = epoch(x.at) + 8 * 3600; return t >= w.start && t < w.start + WEEK; });
      if (w) w[x.outcome === 'allowed' ? 'allowed' : 'denied'] += 1;
    }
    const top = Math.max(1, ...weeks.map(w => w.allowed + w.denied));
    const bars = weeks.map((w, i) => {
      const a = 40 * w.allowed / top, d = 40 * w.denied / top, x = 4 + i * 25;
      const label = new Date(w.start * 1000).toISOString().slice(5, 10);
      return `<rect class="col VALID" x="${x}" y="${44 - a}" width="16" height="${a}"><title>${label} 起一周：允许 ${w.allowed} 次</title></rect>` +
        `<rect class="col INVALID" x="${x}" y="${44 - a - d}" width="16" height="${d}"><title>${label} 起一周：拒绝 ${w.denied} 次</title></rect>` +
        `<text x="${x + 8}" y="56" text-anchor="middle">${label}</text>`;
    }).join('');
    const total = weeks.reduce((n, w) => n + w.allowed + w.denied, 0);
    return `<svg viewBox="0 0 204 60" role="img" aria-label="近 8 周每周访问次数：共 ${total} 次">${bars}</svg>
      <figcaption class="note">近 8 周每周的访问（绿：允许，红：拒绝），共 ${total} 次</figcaption>`;
  }
  async function loadLog() {
    const r = await api('GET', '/api/v1/access-log');
    if (!r.ok) return;
    $('#log-chart').innerHTML = weeklyChart(r.data);
    // One card per access, readable at 360 px: who, what, allowed or refused first; when below.
    $('#log').innerHTML = r.data.map(x => `<li class="${x.outcome === 'allowed' ? 'VALID' : 'INVALID'}">
      <span><strong class="tag">${x.outcome === 'allowed' ? '允许' : '拒绝'}</strong> ${esc(x.organisation)}
      · ${esc(ACTIONS[x.action] || '其他操作')}${x.purpose ? '（' + esc(x.purpose) + '）' : ''}
      <br><span class="note">${esc(when(x.at))} · ${esc(x.target)}</span></span></li>`).join('')
      || '<li class="note">还没有访问记录</li>';
  }

  // While a material waits for its anchor, the list is read again every few seconds (a batch
  // is anchored within seconds to a minute): 已上链存证 appears without a reload.
  let watchTimer = null;
  const WATCH_MS = 3000;
  async function refresh() {
    const r = await api('GET', '/api/v1/materials');
    if (!r.ok) { app.insertAdjacentHTML('afterbegin', '<p class="error" role="alert">' + esc(message(r.data, r.status)) + '</p>'); return; }
    folders = r.data.folders; items = r.data.items;
    renderPending(); renderBank();
    clearTimeout(watchTimer);
    if (items.some(m => m.state === 'confirmed' || m.state === 'storing')) {
      watchTimer = setTimeout(() => refresh().catch(() => { watchTimer = setTimeout(refresh, WATCH_MS * 5); }), WATCH_MS);
    }
  }

  (async () => {
    try {
      const [types, services] = await Promise.all([api('GET', '/api/v1/material-types'), api('GET', '/api/v1/service-items')]);
      $('#folder').insertAdjacentHTML('beforeend', types.data.map(t => '<option value="' + t.code + '">' + esc(t.name) + '</option>').join(''));
      $('#service-item').insertAdjacentHTML('beforeend', services.data.map(s => '<option value="' + s.code + '">' + esc(s.name) + '</option>').join(''));
      const banks = await api('GET', '/api/v1/verifiers');
      if (banks.ok) for (const select of ['#verifier', '#code-bank']) {
        $(select).insertAdjacentHTML('beforeend', banks.data.map(b => '<option>' + esc(b) + '</option>').join(''));
      }
      await Promise.all([refresh(), loadApplications(), loadGrants(), loadLog(), loadRecords()]);
      document.body.dataset.ready = '1';
    } catch (err) {
      if (err instanceof NetworkError) app.insertAdjacentHTML('afterbegin', '<p class="error" role="alert">' + esc(err.message) + '，请检查网络后刷新</p>');
      else throw err;
    }
  })();
  window.portal = {refresh, loadLog, loadGrants};
})();
