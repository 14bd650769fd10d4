// The regulator's district page (governor, registrar): scans per hour over the last day by verdict,
// the share answered INVALID or ERROR, the chain's liveness and the writes waiting for it, and the
// companies by standing. Figures come from GET /api/v1/district (what /metrics counts), drawn here
// as SVG: nothing is loaded from outside. Refreshed every minute.
import {LABELS} from './labels.js';
import {Q} from './app.js';

(() => {
  const {api, message, esc, clock, when, epoch, $, NetworkError} = Q;
  const app = $('#app');
  const OUTBOX = {enterprises: '企业登记上链', records: '证照与检查记录上链', materials: '材料存证上链'};
  const STANDING_CLASS = {active: 'VALID', abnormal: 'CAUTION', revoked: 'INVALID', deregistered: 'SKIPPED'};
  const pct = x => (100 * x).toFixed(x && x < 0.001 ? 3 : 1) + '%';
  app.innerHTML = `
  <div class="grid">
    <section class="card" aria-labelledby="today-h"><h2 id="today-h">近 24 小时扫码</h2><div id="today"></div></section>
    <section class="card" aria-labelledby="chain-h"><h2 id="chain-h">区块链存证</h2><div id="chain"></div></section>
    <section class="card wide" aria-labelledby="hours-h"><h2 id="hours-h">每小时扫码（北京时间）</h2><figure class="chart" id="hours"></figure></section>
    <section class="card wide" aria-labelledby="standing-h"><h2 id="standing-h">企业登记状态</h2><div id="standing"></div></section>
    <p class="note wide" id="as-of" aria-live="polite"></p>
  </div>`;

  function hoursChart(hours) {
    const top = Math.max(1, ...hours.map(h => h.VALID + h.INVALID + h.ERROR));
    const bars = hours.map((h, i) => {
      const x = 4 + i * 8, scale = v => 40 * v / top;
      let y = 44, out = '';
      for (const st of ['VALID', 'INVALID', 'ERROR']) {
        const height = scale(h[st]); y -= height;
        out += `<rect class="col ${st}" x="${x}" y="${y}" width="6" height="${height}"><title>${clock(h.hour)} 起一小时：${LABELS.verdict[st]} ${h[st]} 次</title></rect>`;
      }
      const label = clock(h.hour).slice(0, 2);
      return out + (i % 6 === 0 ? `<text x="${x + 3}" y="56" text-anchor="middle">${label}时</text>` : '');
    }).join('');
    const total = hours.reduce((n, h) => n + h.VALID + h.INVALID + h.ERROR, 0);
    return `<svg viewBox="0 0 200 60" role="img" aria-label="近 24 小时每小时扫码次数：共 ${total} 次">${bars}</svg>
      <figcaption class="note">每小时扫码次数（绿：真实有效，红：无效，橙：无法核验），最高 ${top} 次/小时</figcaption>`;
  }

  function render(d) {
    const total = d.scans_24h.VALID + d.scans_24h.INVALID + d.scans_24h.ERROR;
    $('#today').innerHTML = `<p class="big" id="scans-total">${total.toLocaleString('zh-CN')} 次</p>
      <ul class="list">
        <li class="${d.invalid_rate > 0.01 ? 'INVALID' : 'VALID'}" id="invalid-rate"><span><strong>无效或伪造</strong> ${pct(d.invalid_rate)}
          <br><span class="note">${d.scans_24h.INVALID} 次：码被伪造、篡改或已作废；比例上升时请排查假码</span></span></li>
        <li class="${d.error_rate > 0.01 ? 'CAUTION' : 'VALID'}" id="error-rate"><span><strong>无法核验</strong> ${pct(d.error_rate)}
          <br><span class="note">${d.scans_24h.ERROR} 次：链节点或服务未能回答；比例上升时请检查节点</span></span></li></ul>`;
    const age = d.chain_head_age_seconds;
    const [cls, word] = age < 0 ? ['INVALID', '链节点无响应'] : age <= 60 ? ['VALID', '正常出块'] : age <= 300 ? ['CAUTION', '出块变慢'] : ['INVALID', '已停止出块'];
    const waits = Object.entries(d.outbox).map(([kind, o]) => `<li class="${o.waiting && o.oldest_seconds > 300 ? 'CAUTION' : 'VALID'}" data-outbox="${esc(kind)}">
      <span><strong>${esc(OUTBOX[kind] || kind)}</strong> 待上链 ${o.waiting} 条${o.waiting ? '，最早的已等待 ' + Math.round(o.oldest_seconds) + ' 秒' : ''}</span></li>`).join('');
    $('#chain').innerHTML = `<p class="verdict ${cls}" id="head-age">${word}</p>
      <p class="note">${age < 0 ? '无法读取最新区块' : '最新区块出于 ' + age + ' 秒前'}</p><ul class="list">${waits}</ul>`;
    $('#hours').innerHTML = hoursChart(d.hours);
    const counts = Object.entries(d.standing);
    const most = Math.max(1, ...counts.map(([, n]) => n));
    $('#standing').innerHTML = '<ul class="list">' + counts.map(([status, n]) => `<li class="${STANDING_CLASS[status] || ''}" data-standing="${esc(status)}">
      <span><strong>${esc(LABELS.enterprise[status] || status)}</strong> ${n.toLocaleString('zh-CN')} 户
      <svg class="meter" viewBox="0 0 100 4" preserveAspectRatio="none" aria-hidden="true"><rect class="col ${STANDING_CLASS[status] || ''}" x="0" y="0" width="${100 * n / most}" height="4"></rect></svg></span></li>`).join('') + '</ul>';
    $('#as-of').textContent = '数据时间 ' + when(epoch(d.generated_at)) + '，每分钟更新';
  }

  async function load() {
    try {
      const r = await api('GET', '/api/v1/district');
      if (!r.ok) { $('#as-of').innerHTML = '<span class="error" role="alert">' + esc(message(r.data, r.status)) + '</span>'; return; }
      render(r.data);
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      $('#as-of').innerHTML = '<span class="error" role="alert">' + esc(err.message) + '，显示的是上次的数据</span>';
    } finally { setTimeout(load, 60000); }
  }
  load().then(() => { document.body.dataset.ready = '1'; });
})();
