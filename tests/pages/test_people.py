"""Each person's main job, end to end in headless Chromium, at phone and desktop sizes:
an enterprise user, a clerk at the service window, an inspector on the street. Screenshots land
in test-output/pages/people-*.png."""

import io
from pathlib import Path
from datetime import date, timedelta

import httpx
from playwright.sync_api import expect
import pytest
from PIL import Image
from sqlalchemy import func, select

from codes.scan import scan
from materials_api.bank.models import ConsentGrant, Material
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.records.models import Record
from tests.pages.conftest import write_y4m
from tests.pages.test_pages import DESKTOP, NARROW, PHONE, assert_no_english, shot
from tests.conftest import CODE_VERSION, PROFILE, grant_writers

USCC = "91350100M000100Y43"
PASSWORD = "杨浦-correct-horse-9"
PDF = b"%PDF-1.4\n% material\n"


@pytest.fixture
def people(site):
    app, base, runtime = site
    app.state.enterprises.register(USCC, "上海杨浦示例餐饮管理有限公司")
    accounts = app.state.accounts
    accounts.create_user("上海杨浦示例餐饮管理有限公司", "zhang.san", "张三", Role.ENTERPRISE, USCC, password=PASSWORD)
    accounts.create_user("杨浦区行政服务中心", "clerk01", "李窗口", Role.CLERK, password=PASSWORD)
    accounts.create_user("杨浦区市场监管局", "inspector01", "王检查", Role.INSPECTOR, password=PASSWORD)
    accounts.create_user("示例银行杨浦支行", "bank01", "赵客户经理", Role.BANK, password=PASSWORD)
    accounts.create_user("杨浦区市场监管局", "regulator01", "陈科长", Role.REGISTRAR, password=PASSWORD)
    with runtime.sessions.begin() as s:
        _, bank = create_key(s, "示例银行杨浦支行", Role.BANK)
        _, registrar = create_key(s, "杨浦区市场监管局登记处", Role.REGISTRAR)
    grant_writers(runtime)
    png = httpx.get(f"{base}/api/v1/enterprises/{USCC}/code.png", headers={"Authorization": f"Bearer {registrar}"}).content
    return app, base, runtime, {"Authorization": f"Bearer {bank}"}, png


def sign_in(browser, base, username, viewport, **context_args):
    context = browser.new_context(viewport=viewport, **context_args)
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready]")
    return context, page


def create_clerk_key(runtime) -> str:
    with runtime.sessions.begin() as s:
        return create_key(s, "杨浦区行政服务中心", Role.CLERK)[1]


def count(runtime, model):
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 160)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "phone"), (DESKTOP, "desktop")])
def test_enterprise_user_deposits_confirms_sees_anchored_grants_a_bank_and_reads_its_access(browser, people,
                                                                                          viewport, label):
    app, base, runtime, bank, _ = people
    context, page = sign_in(browser, base, "zhang.san", viewport)
    assert "张三" in page.locator(".bar").inner_text()
    # Bad input first: nothing chosen, then an empty file; Chinese messages inline, nothing stored.
    page.click("#upload-btn")
    assert page.locator("#file-error").inner_text() == "请选择要上传的文件"
    assert page.get_attribute("#file", "aria-invalid") == "true"
    page.set_input_files("#file", files=[{"name": "空.pdf", "mimeType": "application/pdf", "buffer": b""}])
    page.click("#upload-btn")
    assert page.locator("#file-error").inner_text() == "文件是空的，请重新选择"
    assert count(runtime, Material) == 0
    # Three materials: two into chosen folders, one with no folder (the system suggests one).
    uploads = [("营业执照副本.pdf", "business_licence"), ("财务报表2025.pdf", "financial_statement"),
               ("扫描件001.pdf", "")]
    for i, (name, folder) in enumerate(uploads):
        if i == 0:  # dragged from the desktop onto the drop zone
            page.evaluate("""([name, bytes]) => {
                const dt = new DataTransfer();
                dt.items.add(new File([new Uint8Array(bytes)], name, {type: 'application/pdf'}));
                document.querySelector('#drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
            }""", [name, list(PDF + bytes([i]))])
            assert page.locator("#drop").inner_text() == "已选择：" + name
        else:
            page.set_input_files("#file", files=[{"name": name, "mimeType": "application/pdf", "buffer": PDF + bytes([i])}])
        page.select_option("#folder", folder)
        if i == 1:  # a statement valid for another 20 days: the bank reminds before it expires
            page.fill("#valid-until", (date.today() + timedelta(days=20)).isoformat())
        page.click("#upload-btn")
        # (Locator waits, not wait_for_function: the pages' CSP forbids evaluating strings.)
        expect(page.locator("#pending li[data-material]")).to_have_count(i + 1)
    pending = page.locator("#pending li")
    assert pending.count() == 3
    assert all(name in page.locator("#pending").inner_text() for name, _ in uploads)
    suggested = page.locator("#pending li", has_text="扫描件001")
    assert "系统识别的分类（可更正）" in suggested.inner_text()
    assert suggested.locator("select").input_value() == "other"  # the name says nothing: "other"
    suggested.locator("select").select_option("lease_contract")  # the person corrects it
    shot(page, f"people-portal-uploaded-{label}")
    for _ in range(3):
        page.locator("#pending [data-confirm]").first.click()
        expect(page.locator("#pending [data-confirm]")).to_have_count(2 - _)
    assert page.locator("#materials li[data-state=confirmed]").count() == 3
    app.state.anchorer.run_once(force=True)  # the background batcher's pass
    # The page follows by itself: no reload.
    expect(page.locator("#materials li[data-state=anchored]")).to_have_count(3, timeout=15000)
    assert page.locator("#materials a[data-proof]").count() == 3  # proof bundles
    names = [a.get_attribute("download") for a in page.locator("#materials a[data-proof]").all()]
    assert all(n.endswith(".pdf.proof.json") or n.endswith(".jpg.proof.json") or n.endswith(".proof.json") for n in names)
    assert not any(n.startswith("proof-") for n in names), names  # X.proof.json, as the front door and verify-batch read
    proof = httpx.get(base + page.locator("#materials a[data-proof]").first.get_attribute("href"),
                      cookies={c["name"]: c["value"] for c in context.cookies()})
    assert proof.status_code == 200 and proof.json()["version"] == (3 if PROFILE == "gm" else 1)  # 3: SM3 (gm)
    # The folder counts.
    assert "天后到期，请及时更新" in page.locator("#materials li", has_text="财务报表2025").inner_text()
    folders = page.locator("#folders").inner_text()
    assert "全部 3" in folders and "营业执照副本 1" in folders and "租赁合同/场地证明 1" in folders
    with runtime.sessions() as s:
        assert s.scalar(select(Material.type_code).where(Material.title.like("扫描件%"))) == "lease_contract"
    # A new version of the financial statement: confirmed, it supersedes the first.
    statement = page.locator("#materials li", has_text="财务报表2025").get_attribute("data-material")
    page.set_input_files(f"#ver-{statement}", files=[{"name": "财务报表2025-修订.pdf", "mimeType": "application/pdf",
                                                     "buffer": PDF + b"revised"}])
    page.wait_for_selector("#pending [data-confirm]")
    assert "第 2 版" in page.locator("#upload-form p.ok").inner_text()
    page.locator("#pending [data-confirm]").click()
    page.wait_for_selector(f"#materials li[data-material='{statement}'][data-state=superseded]")
    assert page.locator("#materials li[data-state=confirmed]", has_text="第 2 版").count() == 1
    # Consent: bad input first (no organisation), then a grant to the bank for the licence.
    page.click("#consent-form button[type=submit]")
    assert page.locator("#verifier-error").inner_text() == "请选择被授权机构"
    assert count(runtime, ConsentGrant) == 0
    licence = page.locator("#materials li", has_text="营业执照副本").get_attribute("data-material")
    # Chosen from the registered banks, never typed (a misspelt name is a grant no bank holds).
    assert "示例银行杨浦支行" in page.locator("#verifier option").all_inner_texts()
    page.select_option("#verifier", "示例银行杨浦支行")
    page.check(f"#grant-{licence}")
    page.fill("#purpose", "开立对公账户")
    page.fill("#until", "2099-12-31")
    page.click("#consent-form button[type=submit]")
    page.wait_for_selector("#grants li[data-grant]")
    assert "示例银行杨浦支行" in page.locator("#grants").inner_text()
    # The bank reads the licence through its API key; the enterprise sees it in its access log.
    r = httpx.get(f"{base}/api/v1/materials/{licence}/content", headers=bank)
    assert r.status_code == 200 and r.content == PDF + bytes([0])
    page.reload()
    page.wait_for_selector("body[data-ready]")
    log = page.locator("#log").inner_text()
    assert "示例银行杨浦支行" in log and "下载材料" in log and "允许" in log
    # The week's accesses as a picture beside the list: this week's bar counts them.
    chart = page.locator("#log-chart")
    assert "近 8 周每周的访问" in chart.inner_text()
    this_week = chart.locator("rect.VALID").last
    assert float(this_week.get_attribute("height")) > 0 and "允许" in this_week.locator("title").text_content()
    # Revoking the grant: the bank's next read is refused, and that is logged too.
    page.click("#grants [data-revoke]")  # asks first
    assert page.locator("#grants [data-revoke]").inner_text() == "再点一次确认撤销"
    assert httpx.get(f"{base}/api/v1/materials/{licence}/content", headers=bank).status_code == 200
    page.click("#grants [data-revoke]")
    page.wait_for_selector("#grants .s-revoked")
    assert httpx.get(f"{base}/api/v1/materials/{licence}/content", headers=bank).status_code == 403
    # 亮码: the dynamic code is shown and refreshes itself before it expires.
    page.click("#show-code")
    page.wait_for_selector("#code svg")
    assert "过期前自动刷新" in page.locator("#code-expiry").inner_text()
    shown = scan(page.locator("#code svg").screenshot())  # what a bank's phone would read off the screen
    assert len(shown) == 1 and f"/V/{CODE_VERSION}D" in shown[0].upper()
    verdict = httpx.post(f"{base}/api/v1/verify/code", json={"code": shown[0]}).json()
    assert verdict["status"] == "VALID" and verdict["kind"] == "dynamic"
    shot(page, f"people-portal-{label}")
    context.close()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "phone")])
def test_clerk_finds_a_company_by_scanning_its_code_and_files_a_checked_original(browser, people, viewport, label):
    app, base, runtime, _, png = people
    write_y4m(browser.camera_file, png)
    context, page = sign_in(browser, base, "clerk01", viewport, permissions=["camera"])
    page.click("#find-form button[type=submit]")
    assert page.locator("#uscc-error").inner_text() == "请输入统一社会信用代码或企业名称"
    page.fill("#uscc", "91350100M000100Y44")
    page.click("#find-form button[type=submit]")
    assert page.locator("#uscc-error").inner_text() == "校验码错误：第18位应为“3”，实际为“4”"  # the service's own words
    page.fill("#uscc", "9135 0100 M000 1OOY43")  # as printed, in groups; and letter O for zero
    page.click("#find-form button[type=submit]")
    assert page.locator("#uscc-error").inner_text() == "第 14 位的“O”不是统一社会信用代码使用的字符（不用 I、O、Z、S、V）"
    page.fill("#uscc", "9135 0100 M000 100Y43")  # spaces are read past
    page.click("#find-form button[type=submit]")
    page.wait_for_selector("#company-found")
    # By name: part of it is enough, the clerk picks from what matches.
    page.fill("#uscc", "杨浦示例")
    page.click("#find-form button[type=submit]")
    page.wait_for_selector("#matches [data-pick]")
    assert "上海杨浦示例餐饮管理有限公司" in page.locator("#matches").inner_text()
    page.click(f"#matches [data-pick='{USCC}']")
    page.wait_for_selector("#company-found")
    page.fill("#uscc", "没有这家")
    page.click("#find-form button[type=submit]")
    page.wait_for_selector("#matches li.note")
    clerk = {"Authorization": "Bearer " + create_clerk_key(runtime)}
    found = httpx.get(f"{base}/api/v1/enterprises", params={"name": "杨浦示例"}, headers=clerk).json()
    assert [e["uscc"] for e in found["items"]] == [USCC]
    assert httpx.get(f"{base}/api/v1/enterprises", params={"name": "%_"}, headers=clerk).json()["items"] == []  # no wildcard
    page.click("#scan-btn")
    expect(page.locator("#uscc")).to_have_value(USCC, timeout=20000)  # read off the code
    page.wait_for_selector("#company-found", timeout=20000)
    assert "上海杨浦示例餐饮管理有限公司" in page.locator("#company-found").inner_text()
    page.set_input_files("#file", files=[{"name": "食品经营许可证.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.click("#file-btn")  # the originals were not checked yet
    assert page.locator("#original-error").inner_text() == "请先核对原件，再勾选确认"
    assert count(runtime, Material) == 0
    page.check("#original")
    page.click("#file-btn")
    page.wait_for_selector("#filed li[data-material]")
    assert "原件已核验" in page.locator("#filed").inner_text()
    with runtime.sessions() as s:
        assert s.scalar(select(Material.label)) == "original_checked"
    # An application the company started: the clerk sees what is missing.
    with runtime.sessions.begin() as s:
        _, key = create_key(s, "上海杨浦示例餐饮管理有限公司", Role.ENTERPRISE, USCC)
    application = httpx.post(f"{base}/api/v1/applications", headers={"Authorization": f"Bearer {key}"},
                             json={"service_item": "bank_account_opening"}).json()
    page.fill("#application", "12x")
    page.click("#app-form button[type=submit]")
    assert page.locator("#application-error").inner_text() == "请输入数字办件号"
    page.fill("#application", str(application["id"]))
    page.click("#app-form button[type=submit]")
    page.wait_for_selector("#application-out li")
    assert "缺件" in page.locator("#application-out").inner_text()
    shot(page, f"people-window-{label}")
    # The company's applications are listed when it is found; the receipt names what is missing.
    page.fill("#uscc", USCC)
    page.click("#find-form button[type=submit]")
    row = page.locator(f"#applications li[data-application='{application['id']}']")
    expect(row).to_contain_text("开立")
    assert page.locator("#file-form p.ok").count() == 0  # the last filing's message is gone with the new search
    assert "北京时间" in row.inner_text() and "缺" in row.inner_text()
    row.locator("[data-receipt]").click()
    receipt = page.locator("#receipt")
    expect(receipt).to_be_visible()
    text = receipt.inner_text()
    assert "材料接收回执" in text and str(application["id"]) in text and USCC in text
    assert "上海杨浦示例餐饮管理有限公司" in text and "李窗口" in text and "北京时间" in text
    assert text.count("缺件，请补交") == len(application["missing"])
    assert page.locator("#print-receipt").is_visible()
    assert page.evaluate("window.matchMedia('print').matches") is False
    page.emulate_media(media="print")  # printed: the receipt alone, without the buttons
    assert not page.locator("#find-form").is_visible() and not page.locator("#print-receipt").is_visible()
    assert receipt.is_visible()
    page.emulate_media(media="screen")
    receipt.scroll_into_view_if_needed()
    shot(page, f"people-window-receipt-{label}")
    assert_no_english(page)
    page.set_viewport_size(DESKTOP)
    shot(page, f"people-window-desktop-{label}")
    context.close()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "phone")])
def test_inspector_scans_sees_the_regulatory_view_and_records_an_inspection_even_offline(browser, people, tmp_path,
                                                                                         viewport, label):
    app, base, runtime, _, png = people
    context, page = sign_in(browser, base, "inspector01", viewport)
    (tmp_path / "code.png").write_bytes(png)
    page.set_input_files("#code-photo", str(tmp_path / "code.png"))
    page.wait_for_selector("body[data-verdict]")
    assert page.evaluate("document.body.dataset.verdict") == "VALID"
    assert "上海杨浦示例餐饮管理有限公司" in page.locator("#verdict").inner_text()
    assert "真实有效" in page.locator("#verdict .verdict").inner_text()
    # Bad input: no findings; a photo that is not a picture.
    page.select_option("#result", "rectify")
    page.click("#send")
    assert page.locator("#findings-error").inner_text() == "请填写检查情况"
    page.fill("#findings", "后厨地面积水，冷藏柜温度记录缺失两天")
    page.set_input_files("#photo", files=[{"name": "x.txt", "mimeType": "text/plain", "buffer": b"not a photo"}])
    page.click("#send")
    assert page.locator("#photo-error").inner_text() == "现场照片须为 JPG 或 PNG 图片"
    assert count(runtime, Record) == 0
    page.set_input_files("#photo", files=[{"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    page.click("#send")
    page.wait_for_selector("#inspect-form p.ok")
    with runtime.sessions() as s:
        record = s.scalar(select(Record).where(Record.kind == "inspection"))
    assert record is not None and "冷藏柜" in record.data and "photo_sha256" in record.data
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    photo = httpx.get(f"{base}/api/v1/inspections/{record.id}/photo", cookies=cookies)
    assert photo.status_code == 200 and photo.content == jpeg() and photo.headers["content-type"] == "image/jpeg"
    # The visit just recorded heads the company's past visits: result, when, findings, the photo.
    visit = page.locator(f"#visits li[data-visit='{record.id}']")
    expect(visit).to_contain_text("责令整改")
    assert "冷藏柜温度记录缺失" in visit.inner_text() and "北京时间" in visit.inner_text()
    assert "CAUTION" in visit.get_attribute("class")
    expect(visit.locator("img.photo")).to_have_js_property("naturalWidth", 64)
    visit.scroll_into_view_if_needed()
    shot(page, f"people-inspect-{label}")
    assert_no_english(page)
    # A weak network: the verdict says what could not be checked; the inspection waits on the phone.
    context.set_offline(True)
    page.evaluate("delete document.body.dataset.verdict")
    page.set_input_files("#code-photo", str(tmp_path / "code.png"))
    page.wait_for_selector("body[data-verdict]")
    assert page.evaluate("document.body.dataset.verdict") == "OFFLINE"
    assert page.locator("#inspect-form p.ok").count() == 0  # the last scan's "submitted" is gone
    assert "未能检查签名" in page.locator("#verdict").inner_text()
    page.select_option("#result", "passed")
    page.fill("#findings", "复查：已整改")
    page.set_input_files("#photo", files=[{"name": "复查.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    page.click("#send")
    page.wait_for_selector("#queue-note")
    assert count(runtime, Record) == 1
    shot(page, f"people-inspect-offline-{label}")
    context.set_offline(False)
    page.wait_for_selector("#queue-note", state="detached", timeout=20000)
    assert count(runtime, Record) == 2
    page.set_viewport_size(DESKTOP)
    shot(page, f"people-inspect-desktop-{label}")
    context.close()


CONTRAST = """() => {
  const lum = c => { const [r, g, b] = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
      if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.offsetParent || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(getComputedStyle(el).color), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName + ' ' + el.textContent.trim().slice(0, 20) + ' ' + ratio.toFixed(2));
  }
  return bad;
}"""

UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]),select,textarea')].filter(i =>
  !(i.id && document.querySelector('label[for="' + i.id + '"]')) && !i.getAttribute('aria-label')).map(i => i.outerHTML)"""


@pytest.mark.parametrize("username, path", [("zhang.san", "/portal"), ("clerk01", "/window"),
                                            ("inspector01", "/inspect"), ("bank01", "/bank"),
                                            ("regulator01", "/district"), (None, "/login")])
def test_pages_fit_360px_label_every_input_keep_contrast_and_work_by_keyboard(browser, people, username, path):
    _, base, _, _, _ = people
    if username:
        context, page = sign_in(browser, base, username, NARROW)
    else:
        context = browser.new_context(viewport=NARROW)
        page = context.new_page()
        page.goto(base + path)
    assert page.url.endswith(path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(CONTRAST) == []
    # Keyboard: Tab walks only to visible controls, and reaches the page's first form field.
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    first = {"/portal": "show-code", "/window": "uscc", "/inspect": "scan-btn", "/bank": "to-scan",
             "/district": "BUTTON", "/login": "username"}[path]
    assert first in seen
    shot(page, f"people-360{path.replace('/', '-')}")
    context.close()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "390")])
def test_a_bank_person_sees_the_consented_materials_verifies_one_scans_a_code_and_signs_out(browser, people, tmp_path,
                                                                                           viewport, label):
    """The bank's people land on their page: the companies that consented to this bank and the
    materials each grant covers, verified here against the chain; the scan page (signed in: the
    scan carries the session's CSRF token, not 403 csrf_failed) and sign-out one tap away."""
    app, base, runtime, bank, png = people
    with runtime.sessions.begin() as s:
        _, company = create_key(s, "上海杨浦示例餐饮管理有限公司", Role.ENTERPRISE, USCC)
    owner = {"Authorization": f"Bearer {company}"}
    m = httpx.post(f"{base}/api/v1/materials", headers=owner, data={"folder": "business_licence"},
                   files={"file": ("营业执照.pdf", PDF + b"licence", "application/pdf")}).json()
    httpx.post(f"{base}/api/v1/materials/{m['id']}/confirm", headers=owner)
    other = httpx.post(f"{base}/api/v1/materials", headers=owner, data={"folder": "lease_contract"},
                       files={"file": ("租赁合同.pdf", PDF + b"lease", "application/pdf")}).json()
    httpx.post(f"{base}/api/v1/materials/{other['id']}/confirm", headers=owner)
    app.state.anchorer.run_once(force=True)
    r = httpx.post(f"{base}/api/v1/consents", headers=owner, json={
        "verifier_organisation": "示例银行杨浦支行", "material_ids": [m["id"]], "purpose": "开立对公账户",
        "expires_at": "2099-12-31T00:00:00Z"})
    assert r.status_code == 201, r.text
    received = httpx.get(f"{base}/api/v1/consents/received", headers=bank).json()
    assert [g["uscc"] for g in received] == [USCC] and [x["id"] for x in received[0]["materials"]] == [m["id"]]
    assert httpx.get(f"{base}/api/v1/consents/received", headers=owner).status_code == 403  # banks only
    assert httpx.get(f"{base}/api/v1/verifiers", headers=owner).json() == ["示例银行杨浦支行"]  # what the portal offers
    assert httpx.get(f"{base}/api/v1/verifiers", headers=bank).status_code == 403

    signed_out = httpx.get(f"{base}/bank", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login?next=/bank"
    context, page = sign_in(browser, base, "bank01", viewport)
    assert page.url == base + "/bank"
    grant = page.locator("#received article[data-grant]")
    assert grant.count() == 1
    text = grant.inner_text()
    assert "上海杨浦示例餐饮管理有限公司" in text and "开立对公账户" in text and "营业执照" in text
    assert "租赁合同" not in text  # only what the grant covers
    shot(page, f"people-bank-{label}")
    page.click(f"[data-verify='{m['id']}']")
    expect(page.locator(f"#verdict-{m['id']}")).to_have_attribute("data-status", "VALID", timeout=15000)
    assert "真实有效" in page.locator(f"#verdict-{m['id']}").inner_text()
    shot(page, f"people-bank-verified-{label}")
    # The enterprise sees the bank's look at its materials in its access log.
    log = httpx.get(f"{base}/api/v1/access-log", headers=owner).json()
    assert any(e["organisation"] == "示例银行杨浦支行" and e["action"] == "consent_received" for e in log)
    page.click("#to-scan")
    page.wait_for_url(base + "/scan")
    (tmp_path / "code.png").write_bytes(png)
    page.set_input_files("#photo", str(tmp_path / "code.png"))
    page.wait_for_selector("body[data-verdict]")
    assert page.evaluate("document.body.dataset.verdict") == "VALID"
    assert "上海杨浦示例餐饮管理有限公司" in page.locator("#result").inner_text()
    assert "赵客户经理" in page.locator("header.person").inner_text()
    page.click("header.person button")  # 退出
    page.wait_for_url(base + "/login")
    assert page.goto(base + "/bank").url.startswith(base + "/login")  # signed out: the page asks again
    context.close()


def test_the_company_sees_its_permits_and_an_inspectors_order_to_rectify_first(browser, people):
    """What authorities recorded about the company reaches it: a 责令整改 order first, in red, with
    what was found and when (Beijing time); then its licence and permits with their certificates."""
    app, base, runtime, _, _ = people
    with runtime.sessions.begin() as s:
        _, inspector = create_key(s, "杨浦区市场监管局", Role.INSPECTOR)
        _, food = create_key(s, "杨浦区市场监管局食品科", Role.ISSUER, "permit.food")
    grant_writers(runtime)
    r = httpx.post(f"{base}/api/v1/records", headers={"Authorization": f"Bearer {food}"},
                   json={"uscc": USCC, "kind": "food_business", "number": "JY13101100000009", "valid_until": "2030-12-31",
                         "data": {}})
    assert r.status_code in (201, 202), r.text
    r = httpx.post(f"{base}/api/v1/inspections", headers={"Authorization": f"Bearer {inspector}"},
                   data={"uscc": USCC, "result": "rectify", "findings": "后厨防蝇设施缺失，限期三日整改"},
                   files={"file": ("现场.jpg", jpeg(), "image/jpeg")})
    assert r.status_code in (201, 202), r.text
    context, page = sign_in(browser, base, "zhang.san", PHONE)
    page.wait_for_selector("#records li[data-record]")
    first = page.locator("#records li[data-record]").first
    text = first.inner_text()
    assert "责令整改" in text and "后厨防蝇设施缺失" in text and "北京时间" in text
    assert "INVALID" in first.get_attribute("class")
    permit = page.locator("#records li", has_text="食品经营许可证")
    assert "有效" in permit.locator(".tag").inner_text() and "JY13101100000009" in permit.inner_text()
    assert permit.locator("a").get_attribute("href").startswith("/certificates/records/")
    page.locator("#records-h").scroll_into_view_if_needed()
    shot(page, "people-portal-records-phone")
    context.close()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "390")])
def test_a_code_shown_with_consent_lets_the_bank_that_scans_it_see_the_ticked_materials(browser, people, viewport, label):
    """亮码 carrying a consent: the company picks a registered bank and ticks materials; the bank's
    person scans the code off the company's phone and sees exactly those materials."""
    app, base, runtime, _, _ = people
    with runtime.sessions.begin() as s:
        _, company = create_key(s, "上海杨浦示例餐饮管理有限公司", Role.ENTERPRISE, USCC)
    owner = {"Authorization": f"Bearer {company}"}
    ids = {}
    for title, folder in (("营业执照.pdf", "business_licence"), ("租赁合同.pdf", "lease_contract")):
        m = httpx.post(f"{base}/api/v1/materials", headers=owner, data={"folder": folder},
                       files={"file": (title, PDF + title.encode(), "application/pdf")}).json()
        httpx.post(f"{base}/api/v1/materials/{m['id']}/confirm", headers=owner)
        ids[folder] = m["id"]
    app.state.anchorer.run_once(force=True)
    context, page = sign_in(browser, base, "zhang.san", viewport)
    page.click("#code-consent summary")
    page.select_option("#code-bank", "示例银行杨浦支行")
    page.click("#show-code")  # nothing ticked
    assert page.locator("#code-materials-error").inner_text() == "请勾选授权对方查看的材料，或选择“不授权”"
    assert count(runtime, ConsentGrant) == 0
    page.check(f"#code-grant-{ids['business_licence']}")
    page.click("#show-code")
    expect(page.locator("#code-carries")).to_have_text("本码授权 示例银行杨浦支行 查看 1 份材料")
    page.locator("#code svg").scroll_into_view_if_needed()
    shot(page, f"people-portal-code-consent-{label}")
    code_png = page.locator("#code svg").screenshot()
    assert [c.upper().startswith(base.upper() + "/V/") for c in scan(code_png)] == [True]  # readable off the screen
    with runtime.sessions() as s:
        grant = s.scalar(select(ConsentGrant))
    assert grant.verifier_organisation == "示例银行杨浦支行" and grant.expires_at <= int(runtime.clock.time()) + 300
    bank_context, bank_page = sign_in(browser, base, "bank01", viewport)
    bank_page.goto(base + "/scan")
    bank_page.set_input_files("#photo", files=[{"name": "code.png", "mimeType": "image/png", "buffer": code_png}])
    bank_page.wait_for_selector("body[data-verdict]")
    assert bank_page.evaluate("document.body.dataset.verdict") == "VALID"
    consented = bank_page.locator("#consented")
    assert "营业执照" in consented.inner_text() and "租赁合同" not in consented.inner_text()
    assert "亮码授权" in consented.inner_text() and "北京时间" in consented.inner_text()
    shot(bank_page, f"people-bank-scan-consent-{label}")
    assert_no_english(bank_page)
    # A code without a consent says so to the bank; a passer-by sees no materials at all.
    page.select_option("#code-bank", "")
    page.click("#show-code")
    expect(page.locator("#code-carries")).to_have_count(0)
    plain = page.locator("#code svg").screenshot()
    bank_page.evaluate("delete document.body.dataset.verdict")
    bank_page.goto(base + "/scan")
    bank_page.set_input_files("#photo", files=[{"name": "code.png", "mimeType": "image/png", "buffer": plain}])
    bank_page.wait_for_selector("body[data-verdict]")
    assert bank_page.locator("#consent-none").is_visible() and bank_page.locator("#consented").count() == 0
    stranger = browser.new_page(viewport=viewport)
    stranger.goto(base + "/scan")
    stranger.set_input_files("#photo", files=[{"name": "code.png", "mimeType": "image/png", "buffer": code_png}])
    stranger.wait_for_selector("body[data-verdict]")
    assert stranger.locator("#consented").count() == 0 and "营业执照" not in stranger.locator("#result").inner_text()
    stranger.close()
    bank_context.close()
    context.close()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "390")])
def test_the_regulator_reads_the_district_at_a_glance(browser, people, viewport, label):
    """The regulator's district page: scans per hour by verdict (from what /metrics counts,
    written down per hour by the background work), the share INVALID, the chain's liveness, the
    writes waiting for it and the companies by standing; banks and companies are refused it."""
    app, base, runtime, bank, png = people
    [genuine] = scan(png)
    forged = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    for code in (genuine, genuine, genuine, forged):
        assert httpx.post(f"{base}/api/v1/verify/code", json={"code": code}).status_code == 200
    assert app.state.scan_hours.record() == 4  # what the "scan-hours" loop does every minute
    assert app.state.scan_hours.record() == 0  # nothing counted twice
    with runtime.sessions.begin() as s:
        _, registrar = create_key(s, "杨浦区市场监管局", Role.REGISTRAR)
    d = httpx.get(f"{base}/api/v1/district", headers={"Authorization": f"Bearer {registrar}"}).json()
    assert d["scans_24h"] == {"VALID": 3, "INVALID": 1, "ERROR": 0} and d["invalid_rate"] == 0.25
    assert len(d["hours"]) == 24 and d["hours"][-1]["VALID"] == 3 and d["hours"][-1]["hour"].endswith("+00:00")
    assert d["standing"]["active"] == 1 and set(d["outbox"]) == {"enterprises", "records", "materials"}
    assert httpx.get(f"{base}/api/v1/district", headers=bank).status_code == 403
    assert httpx.get(f"{base}/api/v1/district").status_code == 401
    context, page = sign_in(browser, base, "regulator01", viewport)
    assert page.url == base + "/district"
    expect(page.locator("#scans-total")).to_have_text("4 次")
    assert "25.0%" in page.locator("#invalid-rate").inner_text()
    assert "INVALID" in page.locator("#invalid-rate").get_attribute("class")  # above 1 %: red
    assert page.locator("#head-age").inner_text() in ("正常出块", "出块变慢", "已停止出块", "链节点无响应")
    assert "存续" in page.locator("[data-standing=active]").inner_text()
    assert page.locator("#hours svg rect.col.INVALID").count() == 24
    assert "北京时间" in page.locator("#as-of").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, f"people-district-{label}")
    assert_no_english(page)
    context.close()
    bank_context, bank_page = sign_in(browser, base, "bank01", viewport)
    bank_page.goto(base + "/district")
    assert "无权访问" in bank_page.title() and "登记机关" in bank_page.locator("body").inner_text()
    bank_context.close()


def test_an_address_that_does_not_exist_is_a_page_for_a_browser_and_json_for_a_program(browser, people):
    _, base, _, _, _ = people
    page = browser.new_page(viewport=PHONE)
    response = page.goto(base + "/no-such-page")
    assert response.status == 404 and "页面不存在" in page.locator("h1").inner_text()
    assert_no_english(page)
    page.close()
    as_program = httpx.get(f"{base}/no-such-page")
    assert as_program.status_code == 404 and as_program.json()["code"] == "not_found"
    api = httpx.get(f"{base}/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["code"] == "not_found"  # the API's paths answer in JSON


def test_the_company_previews_drops_an_upload_downloads_withdraws_and_prints_its_code(browser, people):
    """Before 确认 the file can be looked at, and a wrong upload dropped (two taps); a material
    held can be downloaded and withdrawn (two taps: revoked on chain); the static code downloads
    as a picture to print."""
    app, base, runtime, _, _ = people
    context, page = sign_in(browser, base, "zhang.san", PHONE, accept_downloads=True)
    for name in ("营业执照副本.pdf", "传错的文件.pdf"):
        page.set_input_files("#file", files=[{"name": name, "mimeType": "application/pdf", "buffer": PDF + name.encode()}])
        page.click("#upload-btn")
        expect(page.locator("#pending li", has_text=name)).to_have_count(1)
    wrong = page.locator("#pending li", has_text="传错的文件")
    with page.expect_download() as shown:
        wrong.locator("[data-preview]").click()
    assert shown.value.suggested_filename == "传错的文件.pdf"
    assert Path(shown.value.path()).read_bytes() == PDF + "传错的文件.pdf".encode()
    wrong.locator("[data-discard]").click()
    assert wrong.locator("[data-discard]").inner_text() == "再点一次确认删除"
    assert page.locator("#pending li[data-material]").count() == 2  # one tap does nothing yet
    wrong.locator("[data-discard]").click()
    expect(page.locator("#pending li[data-material]")).to_have_count(1)
    with runtime.sessions() as s:
        assert s.scalar(select(Material.state).where(Material.file_name == "传错的文件.pdf")) == "withdrawn"
    page.locator("#pending [data-confirm]").click()
    held = page.locator("#materials li[data-state=confirmed]")
    expect(held).to_have_count(1)
    with page.expect_download() as original:
        held.locator("a", has_text="下载原件").click()
    assert Path(original.value.path()).read_bytes() == PDF + "营业执照副本.pdf".encode()
    app.state.anchorer.run_once(force=True)
    anchored = page.locator("#materials li[data-state=anchored]")
    expect(anchored).to_have_count(1, timeout=15000)
    anchored.locator("[data-certificate]").click()  # the certificate: who deposited what, when, the verdict
    page.wait_for_url(f"{base}/certificates/materials/*")
    assert page.locator(".banner h1").inner_text() == "真实有效"
    text = page.locator("main").inner_text()
    assert "营业执照副本" in text and "企业自行上传并确认" in text and "北京时间" in text and USCC in text
    assert page.locator(".qr svg").count() == 1
    shot(page, "people-material-certificate-phone")
    assert_no_english(page)
    material_id = page.url.rsplit("/", 1)[1]
    stranger = httpx.get(f"{base}/certificates/materials/{material_id}", follow_redirects=False)
    assert stranger.status_code == 303 and stranger.headers["location"].startswith("/login?next=")
    bank_context, bank_page = sign_in(browser, base, "bank01", PHONE)  # no consent: not found, as a page
    response = bank_page.goto(f"{base}/certificates/materials/{material_id}")
    assert response.status == 404 and "没有找到存证证书" in bank_page.locator("h1").inner_text()
    bank_context.close()
    page.go_back()
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#materials li[data-state=withdrawn]").count() == 0  # the dropped upload is not listed
    anchored = page.locator(f"#materials li[data-material='{material_id}']")
    anchored.locator("[data-withdraw]").click()
    expect(anchored.locator("[data-withdraw]")).to_have_text("再点一次确认撤回（撤回后他人不能再使用）")
    anchored.locator("[data-withdraw]").click()
    expect(page.locator(f"#materials li[data-material='{material_id}'][data-state=withdrawn]")).to_have_count(1)
    with runtime.sessions() as s:
        ended = s.get(Material, int(material_id))
    assert ended.state == "withdrawn" and ended.revocation_state in ("pending", "confirmed")  # revoked on chain
    with page.expect_download() as code:
        page.click("#static-code")
    assert code.value.suggested_filename == f"企业码-{USCC}.png"
    assert [c.upper().startswith(base.upper() + "/V/") for c in scan(Path(code.value.path()).read_bytes())] == [True]
    shot(page, "people-portal-withdrawn-phone")
    context.close()
