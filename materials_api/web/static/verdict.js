// The one verdict renderer of every page: the verdict's headline and what to do next (an expired
// code is not called forged), then each check with its mark, name and, in Chinese, why. Labels
// come from labels.js, generated from Python (materials_api/web/labels.py, which decides the same way).
import {LABELS} from './labels.js';

export const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

export function verdictLabel(status) {
  return LABELS.verdict[status] || status;
}

// [headline, next step, colour] as labels.headline() in Python: the first check that made the verdict.
export function headline(v) {
  if (v.status === 'VALID') return [verdictLabel('VALID'), '', 'VALID'];
  const fallback = LABELS.default_headline[v.status] || LABELS.default_headline.ERROR;
  const deciding = (v.checks || []).find(c => c.status === v.status);
  return (deciding && LABELS.headline[deciding.reason]) || fallback;
}

export function reasonText(c) {
  return LABELS.reason[c.reason] || ('原因代码 ' + c.reason);
}

export function checkRows(checks) {
  return (checks || []).map(c => {
    const caution = c.status === 'VALID' && LABELS.caution.includes(c.reason);
    const css = caution ? 'CAUTION' : c.status;
    return '<li class="' + esc(css) + '"><span class="m" aria-hidden="true">' + (caution ? LABELS.mark.ERROR : (LABELS.mark[c.status] || '')) +
      '</span><span><strong>' + esc(LABELS.check[c.name] || c.name) + '</strong> ' +
      (caution ? '请留意' : (LABELS.word[c.status] || esc(c.status))) +
      (c.status === 'VALID' && !caution ? '' : '<br><span class="note">' + esc(reasonText(c)) + '</span>') + '</span></li>';
  }).join('');
}

export function warningsHtml(v) {
  return (v.warnings || []).map(w => '<p class="warn" role="note">' + esc(LABELS.warning[w] || w) + '</p>').join('');
}

export function verdictHtml(v) {
  const [title, step, colour] = headline(v);
  return '<p class="verdict ' + esc(colour) + '">' + esc(title) + '</p>' + (step ? '<p class="note">' + esc(step) + '</p>' : '') +
    warningsHtml(v) + '<ul class="list">' + checkRows(v.checks) + '</ul>';
}
