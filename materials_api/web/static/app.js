// Shared helpers of the people's pages (an ES module): the JSON API with the session's CSRF token, Chinese
// messages for every error code, inline form errors, uploads with progress, QR scanning (jsQR).
import {LABELS} from './labels.js';
import {esc, verdictHtml} from './verdict.js';

export const Q = (() => {
  const csrf = document.querySelector('meta[name=csrf-token]').content;
  const ERRORS = {
    auth_missing: '登录已过期，请重新登录', auth_invalid: '登录已过期，请重新登录', csrf_failed: '页面已过期，请刷新后重试',
    role_forbidden: '您的账号无权进行此操作', not_your_enterprise: '只能操作本企业的材料',
    file_missing: '请选择要上传的文件', empty_file: '文件是空的，请重新选择', file_too_large: '文件太大，超过上传上限',
    unsupported_content: '不支持的文件格式，请上传 PDF、图片或 Office 文档', upload_truncated: '上传中断，请重试',
    multipart_malformed: '上传内容有误，请重试', one_file_only: '一次只能上传一个文件', field_too_large: '填写的内容太长',
    valid_until_format: '有效期格式应为 年-月-日', already_expired: '有效期已过，不能作为有效材料上传',
    unknown_folder: '请选择正确的材料分类', not_awaiting_confirmation: '该材料已确认过',
    version_folder_fixed: '新版本材料的分类不能修改', storage_unavailable: '存储服务暂时不可用，材料未保存，请稍后重试',
    enterprise_not_found: '没有找到该统一社会信用代码对应的企业', uscc_required: '请输入统一社会信用代码',
    uscc_length: '统一社会信用代码应为 18 位', uscc_check_character: '统一社会信用代码校验位不正确，请核对',
    uscc_illegal_character: '统一社会信用代码含有无效字符', uscc_not_text: '请输入统一社会信用代码',
    grant_empty: '请至少选择一份材料', grant_expiry: '授权截止日期必须晚于今天', grant_not_found: '授权不存在',
    grant_revoked: '该授权已撤销', application_not_found: '没有找到该办件', service_item_not_found: '没有该办事事项',
    findings_missing: '请填写检查情况', result_invalid: '请选择检查结论', photo_not_image: '现场照片须为 JPG 或 PNG 图片',
    invalid_request: '填写的内容有误，请检查', material_not_found: '材料不存在',
  };
  const STATES = LABELS.material;
  // An instant is shown in Beijing time and says so (the API's timestamps are UTC, with their zone;
  // one written without a zone is UTC too). A date a person entered (有效期, a grant's end) is kept
  // as that day's end in UTC, so its UTC day is the day meant; today() is the day in Beijing.
  const BEIJING = {timeZone: 'Asia/Shanghai'};
  const epoch = t => typeof t === 'number' ? t : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t : t + 'Z') / 1000;
  const day = t => t ? new Date(epoch(t) * 1000).toISOString().slice(0, 10) : '长期';
  const clock = t => new Intl.DateTimeFormat('zh-CN', {...BEIJING, hour: '2-digit', minute: '2-digit', hour12: false})
    .format(new Date(epoch(t) * 1000));
  const when = t => day(t) + ' ' + clock(t) + '（北京时间）';
  const today = () => new Intl.DateTimeFormat('sv-SE', BEIJING).format(new Date());
  const $ = (sel, root) => (root || document).querySelector(sel);

  class NetworkError extends Error {}

  function message(data, status) {
    // A refusal the service words in Chinese itself ("中文 / English") says more than the table:
    // which character of a USCC is wrong, which row of a file.
    if (data && typeof data.message === 'string' && /^[\u4e00-\u9fff]/.test(data.message)) return data.message.split(' / ')[0];
    if (data && ERRORS[data.code]) return ERRORS[data.code];
    if (status >= 500) return '服务暂时不可用，请稍后再试（' + ((data && data.code) || status) + '）';
    return '操作未成功（' + ((data && data.code) || status) + '）';
  }

  async function api(method, path, body, timeout = 15000) {
    const headers = {'X-CSRF-Token': csrf};
    let payload = body;
    if (body && !(body instanceof FormData)) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeout);
    let r;
    try {
      r = await fetch(path, {method, headers, body: payload, credentials: 'same-origin', signal: abort.signal});
    } catch (e) {
      throw new NetworkError(e.name === 'AbortError' ? '网络太慢，请求超时' : '网络不可用');
    } finally { clearTimeout(timer); }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) { location.href = '/login?next=' + encodeURIComponent(location.pathname); }
    return {ok: r.ok, status: r.status, data};
  }

  function upload(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('POST', path);
      x.setRequestHeader('X-CSRF-Token', csrf);
      x.upload.onprogress = e => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      x.onload = () => { let d = null; try { d = JSON.parse(x.responseText); } catch (e) { d = null; }
                         resolve({ok: x.status < 300, status: x.status, data: d}); };
      x.onerror = () => reject(new NetworkError('网络不可用，上传失败'));
      x.send(form);
    });
  }

  // Inline errors: the message sits under its field, the field says it is invalid.
  function fieldError(input, text) {
    const id = input.id + '-error';
    let p = document.getElementById(id);
    if (!p) { p = document.createElement('p'); p.id = id; p.className = 'error'; p.setAttribute('role', 'alert'); input.insertAdjacentElement('afterend', p); }
    p.textContent = text;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
    input.focus();
  }
  function clearErrors(form) {
    form.querySelectorAll('p.error').forEach(p => p.remove());
    form.querySelectorAll('[aria-invalid]').forEach(i => { i.removeAttribute('aria-invalid'); i.removeAttribute('aria-describedby'); });
    form.querySelectorAll('p.ok').forEach(p => p.remove());
  }
  function formMessage(form, text, ok) {
    // One message per form: a new outcome replaces the last, never stands beside a stale one.
    form.querySelectorAll(':scope > p.ok, :scope > p.error').forEach(old => old.remove());
    const p = document.createElement('p');
    p.className = ok ? 'ok' : 'error';
    p.setAttribute('role', ok ? 'status' : 'alert');
    p.textContent = text;
    form.appendChild(p);
    return p;
  }

  // QR codes: from the camera (until one is read) or from a photo.
  const canvas = document.createElement('canvas');
  function decode(img, w, h) {
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, w, h);
    const code = jsQR(ctx.getImageData(0, 0, w, h).data, w, h, {inversionAttempts: 'attemptBoth'});
    return code ? code.data : null;
  }
  function decodeFile(file) {
    return new Promise(resolve => {
      const img = new Image();
      img.onload = () => { const s = Math.min(1, 1600 / Math.max(img.width, img.height));
                           resolve(decode(img, Math.round(img.width * s), Math.round(img.height * s))); };
      img.onerror = () => resolve(null);
      img.src = URL.createObjectURL(file);
    });
  }
  async function scanCamera(video, onCode) {
    const stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment'}});
    video.srcObject = stream; video.hidden = false; await video.play();
    const tick = () => {
      if (video.videoWidth) { const text = decode(video, video.videoWidth, video.videoHeight);
        if (text) { stream.getTracks().forEach(t => t.stop()); video.hidden = true; return onCode(text); } }
      requestAnimationFrame(tick);
    };
    tick();
  }

  return {api, upload, message, esc, day, clock, when, today, epoch, $, fieldError, clearErrors, formMessage, verdictHtml, decodeFile, scanCamera,
          NetworkError, STATES};
})();
