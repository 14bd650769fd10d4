// The front door's file check: the material's SHA-256 is computed here, in the browser (the file
// never leaves the device), and sent with its proof bundle to /api/v1/verify/material.
import {esc, verdictHtml} from './verdict.js';

const $ = id => document.getElementById(id);
const files = {material: null, proof: null};

function show(html, status) {
  $('verdict').innerHTML = html;
  document.body.dataset.verdict = status;
}

function take(list) {
  for (const f of list) {
    if (/\.json$/i.test(f.name) || f.type === 'application/json') files.proof = f; else files.material = f;
  }
  $('drop').textContent = [files.material && '材料：' + files.material.name, files.proof && '存证：' + files.proof.name]
    .filter(Boolean).join('　') || '拖放文件到这里';
}

async function sha256hex(file) {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
}

async function verify() {
  if (!files.material || !files.proof) return show('<p class="error" role="alert">请同时选择材料文件和存证文件。</p>', 'MISSING');
  let bundle;
  try { bundle = JSON.parse(await files.proof.text()); }
  catch (e) { return show('<p class="error" role="alert">存证文件不是有效的 JSON。</p>', 'BAD_PROOF'); }
  show('<p>正在核验…</p>', 'PENDING');
  try {
    const csrf = document.querySelector('meta[name=csrf-token]')?.content;
    const headers = {'content-type': 'application/json', ...(csrf ? {'X-CSRF-Token': csrf} : {})};
    const r = await fetch('/api/v1/verify/material', {method: 'POST', headers,
                                                      body: JSON.stringify({sha256: await sha256hex(files.material), bundle})});
    const v = await r.json();
    if (!v.checks) return show('<p class="error" role="alert">无法核验：' + esc(v.message || v.code) + '</p>', 'REFUSED');
    show(verdictHtml(v), v.status);
  } catch (e) { show('<p class="error" role="alert">网络不可用，无法核验。</p>', 'ERROR'); }
}

const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); take(e.dataTransfer.files); });
$('material-file').addEventListener('change', e => take(e.target.files));
$('proof-file').addEventListener('change', e => take(e.target.files));
$('verify').addEventListener('click', verify);
