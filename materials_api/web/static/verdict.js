// The one verdict renderer of every page: a verdict's status in words, then each check with its
// mark, name and (when it did not pass) why. Labels come from labels.js, generated from Python.
import {LABELS} from './labels.js';

export const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

export function verdictLabel(status) {
  return LABELS.verdict[status] || status;
}

export function checkRows(checks) {
  return (checks || []).map(c => '<li class="' + esc(c.status) + '"><span class="m" aria-hidden="true">' +
    (LABELS.mark[c.status] || '') + '</span><span><strong>' + esc(LABELS.check[c.name] || c.name) + '</strong> ' +
    (LABELS.word[c.status] || esc(c.status)) +
    (c.status === 'VALID' ? '' : '<br><span class="note">' + esc(c.message) + '</span>') + '</span></li>').join('');
}

export function warningsHtml(v) {
  return (v.warnings || []).map(w => '<p class="warn" role="note">' + esc(LABELS.warning[w] || w) + '</p>').join('');
}

export function verdictHtml(v) {
  return '<p class="verdict ' + esc(v.status) + '">' + esc(verdictLabel(v.status)) + '</p>' + warningsHtml(v) +
    '<ul class="list">' + checkRows(v.checks) + '</ul>';
}
