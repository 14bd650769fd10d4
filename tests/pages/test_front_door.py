"""The front door and the demo district, in headless Chromium: a newcomer lands on `/`, finds the
way to scan, sign in and the API, checks a file against its proof bundle right there (hashed in
the browser), and every page shows the demo's data. Screenshots in test-output/pages/."""

import json

import httpx
from playwright.sync_api import expect
import pytest

from materials_api.bank.models import Material
from materials_api.demo import COMPANIES, fill
from materials_api.root import Services
from tests.conftest import MATERIAL_BUNDLE
from tests.pages.conftest import OUT
from tests.pages.test_pages import NARROW, PHONE, shot


@pytest.fixture
def district(site):
    app, base, runtime = site
    services = Services(**{name: getattr(app.state, name) for name in Services.__dataclass_fields__})
    return base, runtime, services, fill(runtime, services)


def test_the_demo_fills_a_district_once_and_every_page_shows_it(browser, district):
    base, runtime, services, d = district
    assert len(d.companies) == len(COMPANIES) and d.anchored == 3 and not d.already
    assert {role for _, _, role in d.people} == {"enterprise", "clerk", "inspector", "bank", "registrar"}
    assert fill(runtime, services).already  # a second run changes nothing
    # The abnormal company's page says so; the supermarket's revoked drug permit is red.
    abnormal_uscc = next(u for (u, name), c in zip(d.companies, COMPANIES) if c[3])
    page = browser.new_page(viewport=PHONE)
    page.goto(services.codes.static_code(abnormal_uscc)[0])
    assert page.locator(".banner h1").inner_text() == "真实有效"
    assert "该企业被列入经营异常名录" in page.locator("main").inner_text()
    page.goto(services.codes.static_code(d.companies[1][0])[0])
    rows = page.locator("section[aria-label='许可证'] li").all_inner_texts()
    assert any("药品经营许可证" in r and "已撤销" in r for r in rows) and any("食品经营许可证" in r for r in rows)
    shot(page, "demo-verification-page")
    # The enterprise person signs in with the printed password and sees three anchored materials.
    username, password, _ = next(p for p in d.people if p[2] == "enterprise")
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/portal")
    page.wait_for_selector("#materials li[data-state=anchored]")
    assert page.locator("#materials li[data-state=anchored]").count() == 3
    shot(page, "demo-portal")
    page.close()
    # The regulator lands on the district page: six companies, one of them on the abnormal list.
    username, password, _ = next(p for p in d.people if p[2] == "registrar")
    page = browser.new_page(viewport=PHONE)
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/district")
    expect(page.locator("[data-standing=abnormal]")).to_contain_text("1 户")
    assert "5 户" in page.locator("[data-standing=active]").inner_text()
    shot(page, "demo-district")
    page.close()


@pytest.mark.parametrize("viewport, label", [(NARROW, "360"), (PHONE, "390")])
def test_front_door_leads_everywhere_and_checks_a_file_against_its_proof(browser, district, tmp_path, viewport, label):
    base, runtime, services, d = district
    page = browser.new_page(viewport=viewport)
    page.goto(base + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    links = {a: page.locator(f"#{a}").get_attribute("href") for a in ("go-scan", "go-login", "go-api")}
    assert links == {"go-scan": "/scan", "go-login": "/login", "go-api": "/docs"}
    for href in links.values():
        assert httpx.get(base + href).status_code == 200
    for input_id in page.evaluate("[...document.querySelectorAll('input')].map(i => i.id)"):
        assert page.locator(f"label[for='{input_id}']").count() == 1
    assert not [r for r in page.evaluate("[...document.scripts].map(s => s.src)") if r and not r.startswith(base)]
    shot(page, f"front-door-{label}")
    # A material of the demo and its proof bundle, as the enterprise would hand them over.
    with runtime.sessions() as s:
        material = s.query(Material).filter(Material.state == "anchored").first()
    content = b"".join(services.materials.content(material))
    (tmp_path / "营业执照副本.pdf").write_bytes(content)
    (tmp_path / "营业执照副本.proof.json").write_text(services.materials.bundle(material).dumps())
    page.set_input_files("#material-file", str(tmp_path / "营业执照副本.pdf"))
    page.set_input_files("#proof-file", str(tmp_path / "营业执照副本.proof.json"))
    page.click("#verify")
    page.wait_for_selector("body[data-verdict]:not([data-verdict=PENDING])")
    assert page.evaluate("document.body.dataset.verdict") == "VALID"
    assert page.locator("#verdict .verdict").inner_text() == "真实有效"
    shot(page, f"front-door-verified-{label}")
    # One byte changed: the same proof no longer fits the file.
    (tmp_path / "改过的.pdf").write_bytes(content[:-2] + b"X\n")
    page.set_input_files("#material-file", str(tmp_path / "改过的.pdf"))
    page.click("#verify")
    page.wait_for_selector("body[data-verdict=INVALID]")
    assert "内容完整" in page.locator("#verdict").inner_text()
    # A proof file that is not JSON gets a plain refusal, not a verdict.
    (tmp_path / "bad.json").write_text("{not json")
    page.set_input_files("#proof-file", str(tmp_path / "bad.json"))
    page.click("#verify")
    page.wait_for_selector("body[data-verdict=BAD_PROOF]")
    page.close()
    assert json.loads((tmp_path / "营业执照副本.proof.json").read_text())["version"] == MATERIAL_BUNDLE
    assert OUT.exists()
