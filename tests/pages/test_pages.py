"""The verification and scan pages in headless Chromium, on a phone-sized and a desktop viewport.
Screenshots land in test-output/pages/ to be looked at."""


import httpx
import pytest
from PIL import Image

from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from tests.codes.test_render_scan import photo
from tests.pages.conftest import OUT, write_y4m
from tests.conftest import RECORD_BUNDLE, grant_writers

USCC = "91350100M000100Y43"
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def company(site):
    app, base, runtime = site
    with runtime.sessions.begin() as s:
        keys = {}
        for name, role, scope in (("registrar", Role.REGISTRAR, None), ("licence", Role.ISSUER, "licence"),
                                  ("food", Role.ISSUER, "permit.food"), ("drug", Role.ISSUER, "permit.drug_medical")):
            _, plain = create_key(s, f"org-{name}", role, scope)
            keys[name] = {"Authorization": f"Bearer {plain}"}
    grant_writers(runtime)
    c = httpx.Client(base_url=base, timeout=30)
    assert c.post("/api/v1/enterprises", headers=keys["registrar"],
                  json={"uscc": USCC, "name": "上海杨浦示例餐饮管理有限公司"}).status_code == 201
    c.post("/api/v1/records", headers=keys["licence"], json={
        "uscc": USCC, "kind": "business_licence", "number": USCC,
        "data": {"legal_representative": "张三", "addresses": ["上海市杨浦区国定路335号", "上海市杨浦区政立路485号"]}})
    c.post("/api/v1/records", headers=keys["food"], json={"uscc": USCC, "kind": "food_business",
           "number": "JY13101100000001", "valid_until": "2030-12-31", "data": {}})
    revoked = c.post("/api/v1/records", headers=keys["drug"], json={"uscc": USCC, "kind": "drug_retail",
                     "number": "沪CB0210001", "valid_until": "2029-06-30", "data": {}}).json()
    c.post(f"/api/v1/records/{revoked['id']}/status", headers=keys["drug"], json={"status": "revoked", "reason": "违规经营"})
    png = c.get(f"/api/v1/enterprises/{USCC}/code.png", headers=keys["registrar"]).content
    from codes.scan import scan

    return base, scan(png)[0], png


def shot(page, name):
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "phone"), (DESKTOP, "desktop")])
def test_verification_page_reads_at_a_glance(browser, company, viewport, label):
    base, url, _ = company
    page = browser.new_page(viewport=viewport)
    page.goto(url)  # upper case, as a phone camera hands it over
    assert page.locator(".banner h1").inner_text() == "真实有效"
    text = page.locator("main").inner_text()
    assert "上海杨浦示例餐饮管理有限公司" in text and USCC in text
    assert "上海市杨浦区政立路485号" in text  # 一照多址
    permits = page.locator("section[aria-label='许可证'] li")
    assert permits.count() == 2
    bars = page.locator("section.timeline rect.bar")
    coloured = {b.locator("title").text_content().split("：")[0]: b.get_attribute("class") for b in bars.all()}
    assert coloured == {"营业执照": "bar VALID", "食品经营许可证": "bar VALID", "药品经营许可证（零售）": "bar INVALID"}, coloured
    tags = {permits.nth(i).locator("strong").inner_text(): permits.nth(i).locator(".tag").inner_text() for i in range(2)}
    assert tags == {"食品经营许可证": "有效", "药品经营许可证（零售）": "已撤销"}, tags
    assert_no_english(page)
    shot(page, f"verification-{label}")
    # 查看存证证书: a certificate a person reads, prints, and scans back; the bundle for machines.
    page.locator("section[aria-label='许可证'] li", has_text="食品经营许可证").locator("a").click()
    page.wait_for_selector("section.certificate")
    cert = page_text(page)
    for words in ("存证证书", "上海杨浦示例餐饮管理有限公司", USCC, "食品经营许可证", "JY13101100000001", "上链时间",
                  "北京时间", "区块高度", "真实有效", "核验时间"):
        assert words in cert, words
    assert page.locator("section.qr svg").count() == 1
    assert_no_english(page)
    shot(page, f"certificate-{label}")
    link = page.locator("a[download]")
    assert link.get_attribute("download") == "JY13101100000001.proof.json"
    bundle = httpx.get(base + link.get_attribute("href")).json()
    assert bundle["version"] == RECORD_BUNDLE and bundle["record"]["category"] == "permit.food"  # a record's bundle
    assert bundle["leaf_hash"][2:] in cert.replace("\n", "")
    page.close()


def test_a_certificate_of_nothing_is_a_page_not_json(browser, company):
    base, _, _ = company
    page = browser.new_page(viewport=NARROW)
    response = page.goto(base + "/certificates/records/999999")
    assert response.status == 404
    r = httpx.get(base + "/certificates/records/999999")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "没有找到存证证书" in page_text(page)
    assert_no_english(page)
    page.close()


def test_a_copied_code_on_another_host_is_not_genuine(browser, company):
    base, url, _ = company
    page = browser.new_page(viewport=PHONE)
    page.goto(url.replace("127.0.0.1", "localhost"))
    assert page.locator(".banner h1").inner_text() == "无效或伪造"
    assert "上海杨浦示例餐饮管理有限公司" not in page.locator("main").inner_text()
    assert_no_english(page)
    shot(page, "verification-copied-code")
    page.close()


def test_scan_page_reads_a_photo_and_shows_the_verdict(browser, company, tmp_path):
    base, url, png = company
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(photo(png, angle=12, scale=0.6, quality=70))
    page = browser.new_page(viewport=PHONE)
    page.goto(base + "/scan")
    page.set_input_files("#photo", str(picture))
    page.wait_for_selector("body[data-verdict]")
    assert page.evaluate("document.body.dataset.verdict") == "VALID"
    assert "真实有效" in page.locator("#result").inner_text()
    shot(page, "scan-photo-phone")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 400), "white").save(blank)
    page.goto(base + "/scan")
    page.set_input_files("#photo", str(blank))
    page.wait_for_selector("body[data-verdict]")
    assert page.evaluate("document.body.dataset.verdict") == "NO_CODE"
    page.close()


def test_scan_page_reads_the_camera(browser, company):
    base, url, png = company
    write_y4m(browser.camera_file, png)
    context = browser.new_context(viewport=PHONE, permissions=["camera"])
    page = context.new_page()
    page.goto(base + "/scan")
    page.click("#camera")
    page.wait_for_selector("body[data-verdict]", timeout=20000)
    assert page.evaluate("document.body.dataset.verdict") == "VALID"
    shot(page, "scan-camera-phone")
    context.close()


def test_pages_fit_360px_and_label_their_inputs(browser, company):
    base, url, _ = company
    page = browser.new_page(viewport=NARROW)
    for path in (url, base + "/scan"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for input_id in page.evaluate("[...document.querySelectorAll('input')].map(i => i.id)"):
        assert page.locator(f"label[for='{input_id}']").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "camera"  # keyboard reaches the first control
    page.close()


def page_text(page) -> str:
    return page.locator("main").inner_text()


def assert_no_english(page):
    """No English sentence on a page people read (identifiers, fingerprints and the product's
    name aside): two English words in a row is a sentence leaking through. Details opened first."""
    import re

    for d in page.locator("details").all():
        d.evaluate("el => el.open = true")
    text = page.locator("body").inner_text()
    found = re.findall(r"[A-Za-z]{2,}(?:[,.:'-]?\s+[A-Za-z]{2,})+", text)  # words apart, not x.proof.json
    assert not found, f"English on the page: {found}"


def test_standing_comes_first_in_its_own_colour_apart_from_the_codes_genuineness(browser, company, site):
    """A genuine code of a company on the abnormal list: the code is 真实有效 (it is genuine), the
    standing above it is amber 经营异常, and the status check says 请留意 — never a green tick."""
    base, url, _ = company
    page = browser.new_page(viewport=PHONE)
    page.goto(url)
    standing = page.locator("section.standing")
    assert "经营状况：有证照失效" in standing.inner_text()  # the drug permit was revoked
    assert "CAUTION" in standing.get_attribute("class")
    _, _, runtime = site
    with runtime.sessions.begin() as s:
        _, registrar = create_key(s, "登记机关", Role.REGISTRAR)
    r = httpx.post(f"{base}/api/v1/enterprises/{USCC}/status", headers={"Authorization": f"Bearer {registrar}"},
                   json={"status": "abnormal", "reason": "未按期公示年报"})
    assert r.status_code in (200, 202), r.text
    page.goto(url)
    assert page.locator(".banner h1").inner_text() == "真实有效"
    box = page.locator("section.standing").bounding_box()
    assert box["y"] < page.locator(".banner").bounding_box()["y"]  # standing first
    assert "经营状况：经营异常" in page.locator("section.standing").inner_text()
    assert "CAUTION" in page.locator("section.standing").get_attribute("class")
    page.click("details summary")
    status_row = page.locator("details li", has_text="登记状态")
    assert "请留意" in status_row.inner_text() and "经营异常名录" in status_row.inner_text()
    assert "CAUTION" in status_row.get_attribute("class")
    assert "核验时间" in page_text(page) and "北京时间" in page_text(page)
    assert_no_english(page)
    shot(page, "verification-abnormal-phone")
    page.close()


def test_an_expired_dynamic_code_is_called_expired_not_forged(browser, site, company, tmp_path):
    base, _, _ = company
    _, _, runtime = site
    with runtime.sessions.begin() as s:
        _, key = create_key(s, "企业", Role.ENTERPRISE, USCC)
    issued = httpx.post(f"{base}/api/v1/codes/dynamic", headers={"Authorization": f"Bearer {key}"},
                        json={"ttl_seconds": 60}).json()
    runtime.clock.advance(120)
    from codes.render import render_png

    picture = tmp_path / "code.png"
    picture.write_bytes(render_png(issued["code"], "上海杨浦示例餐饮管理有限公司", USCC))
    page = browser.new_page(viewport=PHONE)
    page.goto(base + "/scan")
    page.set_input_files("#photo", str(picture))
    page.wait_for_selector("body[data-verdict]")
    assert page.evaluate("document.body.dataset.verdict") == "INVALID"
    result = page.locator("#result").inner_text()
    assert "码已过期" in result and "请对方刷新后重新出示" in result
    assert "无效或伪造" not in result and "expired" not in result.lower()
    assert "CAUTION" in page.locator("#result .verdict").get_attribute("class")
    assert_no_english(page)
    shot(page, "scan-expired-dynamic-code-phone")
    page.close()


def test_a_static_codes_page_is_kept_as_rendered_until_something_behind_it_moves(site, company):
    """The page under load: a second view of the same static code is the first one's page (a
    cache hit, counted) with a fresh time of check; a status change shows on the next view."""
    import re

    app, _, runtime = site
    base, url, _ = company
    lookups = app.state.metrics.cache_lookups

    def view() -> str:
        r = httpx.get(url)
        assert r.status_code == 200 and "核验时间" in r.text
        return r.text

    first = view()
    hits = lookups.labels("page", "hit")._value.get()
    second = view()
    assert lookups.labels("page", "hit")._value.get() == hits + 1
    without_time = lambda html: re.sub(r"核验时间 [^<]*", "", html)  # noqa: E731
    assert without_time(second) == without_time(first) and "\x00" not in second
    with runtime.sessions.begin() as s:
        _, registrar = create_key(s, "登记机关", Role.REGISTRAR)
    r = httpx.post(f"{base}/api/v1/enterprises/{USCC}/status", headers={"Authorization": f"Bearer {registrar}"},
                   json={"status": "revoked", "reason": "吊销营业执照"})
    assert r.status_code in (200, 202), r.text
    third = view()
    assert "已吊销" in third and "已吊销" not in first
