// The bank's page: the companies whose enterprises consented to this bank, each grant's purpose and
// end, and the materials it covers now; each material is downloaded or verified against its chain
// proof here (the file and its bundle go to the same check a passer-by's file gets). Scanning a
// company's code is one tap away (/scan carries the session, so a consented code opens its view).
import {Q} from './app.js';

(() => {
  const {api, message, esc, day, $, verdictHtml, NetworkError} = Q;
  const app = $('#app');
  app.innerHTML = `
  <div class="grid">
    <section class="card" aria-labelledby="scan-h"><h2 id="scan-h">扫码核验</h2>
      <p class="note">扫描企业出示的企业码（亮码）：码中带有授权时，可直接查看授权材料</p>
      <a class="button" href="/scan" id="to-scan">扫企业码</a></section>
    <section class="card wide" aria-labelledby="received-h"><h2 id="received-h">企业授权给本行的材料</h2>
      <div id="received" aria-live="polite"><p class="loading">加载中…</p></div></section>
  </div>`;

  function renderGrant(g) {
    const rows = g.materials.map(m => `<li data-material="${m.id}"><span><strong>${esc(m.title)}</strong>
      <span class="note">${esc(m.folder_name)} · 第 ${m.version} 版 · 有效期至 ${day(m.valid_until)}</span>
      <br><a href="${m.content}" download="${esc(m.file_name)}">下载</a> ·
      <a href="/certificates/materials/${m.id}" data-certificate="${m.id}">存证证书</a> ·
      <button type="button" class="link" data-verify="${m.id}">核验真伪</button>
      <div class="result" id="verdict-${m.id}" aria-live="polite"></div></span></li>`).join('')
      || '<li class="note">授权的材料尚未上链存证，暂不能查看</li>';
    return `<article class="grant" data-grant="${g.grant_id}"><h3>${esc(g.enterprise_name)}</h3>
      <p class="note">统一社会信用代码 ${esc(g.uscc)} · 用途：${esc(g.purpose)} · 授权截至 ${day(g.expires_at)}</p>
      <ul class="list">${rows}</ul></article>`;
  }

  async function load() {
    const r = await api('GET', '/api/v1/consents/received');
    if (!r.ok) { $('#received').innerHTML = '<p class="error" role="alert">' + esc(message(r.data, r.status)) + '</p>'; return; }
    $('#received').innerHTML = r.data.map(renderGrant).join('') ||
      '<p class="note">还没有企业授权给本行。企业可在“企业材料银行”中选择本行并勾选材料授权，或亮码时带上授权</p>';
  }

  // Verify: the stored bytes and their proof bundle, checked by the service's verifier.
  $('#received').addEventListener('click', async e => {
    const id = e.target.dataset.verify; if (!id) return;
    const out = $('#verdict-' + id);
    out.innerHTML = '<p class="note">正在核验…</p>';
    try {
      const [file, proof] = await Promise.all([fetch(`/api/v1/materials/${id}/content`, {credentials: 'same-origin'}),
                                               api('GET', `/api/v1/materials/${id}/proof`)]);
      if (!file.ok || !proof.ok) { out.innerHTML = '<p class="error" role="alert">' + esc(message(proof.data, file.ok ? proof.status : file.status)) + '</p>'; return; }
      const data = new FormData();
      data.append('file', await file.blob(), 'material');
      data.append('bundle', JSON.stringify(proof.data));
      const v = await api('POST', '/api/v1/verify/material', data);
      out.innerHTML = v.ok ? verdictHtml(v.data) : '<p class="error" role="alert">' + esc(message(v.data, v.status)) + '</p>';
      out.dataset.status = v.ok ? v.data.status : 'REFUSED';
    } catch (err) {
      out.innerHTML = '<p class="error" role="alert">' + esc(err instanceof NetworkError ? err.message + '，请检查网络后重试' : '核验未完成，请重试') + '</p>';
    }
  });

  load().then(() => { document.body.dataset.ready = '1'; })
    .catch(err => { $('#received').innerHTML = '<p class="error" role="alert">' + esc(err.message) + '</p>'; });
})();
