"""People's sign-in: argon2id passwords, session cookies with CSRF, lock-out, safe redirects,
role-gated pages, and OpenID Connect against a real local provider (oidc-provider-mock)."""

import re
import time
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from materials_api.identity.models import Role, User, UserSession
from materials_api.main import create_app
from chain.clock import MovableClock
from materials_api.platform.runtime import Runtime

USCC = "91350100M000100Y43"
PASSWORD = "杨浦-correct-horse-9"


@pytest.fixture
def site(settings, evm):
    settings.login_lockout_seconds = 2
    runtime = Runtime.open(settings, client=evm, clock=MovableClock())
    app = create_app(runtime, reconcile=False)
    app.state.enterprises.register(USCC, "福建示例科技有限公司")
    accounts = app.state.accounts
    accounts.create_user("福建示例科技有限公司", "zhang.san", "张三", Role.ENTERPRISE, USCC, password=PASSWORD)
    accounts.create_user("杨浦区行政服务中心", "clerk01", "李四", Role.CLERK, password=PASSWORD + "x")
    with TestClient(app, base_url="http://testserver") as client:
        yield client, runtime
    runtime.close()


def login(client, username="zhang.san", password=PASSWORD, **extra):
    return client.post("/login", data={"username": username, "password": password, **extra}, follow_redirects=False)


def csrf_of(page_html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page_html).group(1)


def test_passwords_are_stored_as_argon2id_only(site):
    _, runtime = site
    with runtime.sessions() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "zhang.san"))
    assert stored.startswith("$argon2id$") and "m=65536,t=3" in stored and PASSWORD not in stored


def test_sign_in_sets_a_secure_session_cookie_and_lands_on_the_role_page(site):
    client, runtime = site
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    cookie = r.headers["set-cookie"]
    assert "qiyema_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    secret = re.search(r"qiyema_session=([^;]+)", cookie).group(1)
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(UserSession)) == 1
        assert s.scalar(select(UserSession.id)) != secret  # only its hash is stored
    page = client.get("/portal")
    assert page.status_code == 200 and "张三" in page.text and 'data-role="enterprise"' in page.text


def test_cookie_requests_need_the_csrf_token_to_change_anything(site):
    client, _ = site
    login(client)
    token = csrf_of(client.get("/portal").text)
    assert client.get("/api/v1/materials").status_code == 200  # reads need no token
    body = {"verifier_organisation": "示例银行", "material_types": ["business_licence"], "purpose": "开户",
            "expires_at": "2099-01-01T00:00:00Z"}
    refused = client.post("/api/v1/consents", json=body)
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    forged = client.post("/api/v1/consents", json=body, headers={"X-CSRF-Token": "guess"})
    assert forged.status_code == 403
    ok = client.post("/api/v1/consents", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201, ok.text
    assert client.get("/api/v1/consents").json()[0]["verifier_organisation"] == "示例银行"


def test_wrong_passwords_lock_the_account_then_it_opens_again(site):
    client, runtime = site
    for left in (4, 3, 2, 1):
        r = login(client, password="wrong-password-1")
        assert r.status_code == 401 and f"再错 {left} 次将暂停本设备的登录" in r.text and 'aria-invalid=true' in r.text
    r = login(client, password="wrong-password-1")
    assert r.status_code == 423 and "本设备的登录已暂停" in r.text
    assert login(client).status_code == 423  # even the right password, while locked
    runtime.clock.advance(2.1)
    assert login(client).status_code == 303


def _from(address: str) -> dict:
    return {"X-Forwarded-For": address}


def test_a_stranger_cannot_lock_a_person_out_nor_learn_which_names_exist(site):
    """Guesses from one address lock that address out for that name only; the person signs in
    from theirs. An unknown name is answered and counted exactly like a known one."""
    client, runtime = site
    runtime.settings.trusted_proxies = ["testclient"]  # the test client stands for the site's proxy
    stranger = _from("203.0.113.9")
    answers = {}
    for name in ("zhang.san", "no.such.person"):
        texts = []
        for _ in range(5):
            r = client.post("/login", data={"username": name, "password": "wrong-password-1"}, headers=stranger,
                            follow_redirects=False)
            texts.append((r.status_code, r.text.replace(name, "NAME")))
        answers[name] = texts
    assert answers["zhang.san"] == answers["no.such.person"]  # same statuses, same words, step by step
    assert [status for status, _ in answers["zhang.san"]] == [401, 401, 401, 401, 423]
    # Locked for the stranger's address only: the person, from their own, signs in.
    r = client.post("/login", data={"username": "zhang.san", "password": PASSWORD}, headers=stranger,
                    follow_redirects=False)
    assert r.status_code == 423
    r = client.post("/login", data={"username": "zhang.san", "password": PASSWORD}, headers=_from("198.51.100.20"),
                    follow_redirects=False)
    assert r.status_code == 303


def test_wrong_passwords_at_once_are_each_counted(site):
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import select

    from materials_api.identity.models import SignInFailures

    _, runtime = site
    accounts = runtime_accounts(site)
    accounts.max_failures = 1000
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: accounts._count_failure("zhang.san", "192.0.2.1", time.time()), range(40)))
    with runtime.sessions() as s:
        assert s.scalar(select(SignInFailures.failures).where(SignInFailures.address == "192.0.2.1")) == 40


def runtime_accounts(site):
    client, _ = site
    return client.app.state.accounts


def test_unknown_user_and_empty_form_get_inline_chinese_errors(site):
    client, _ = site
    r = login(client, username="nobody")
    assert r.status_code == 401 and "用户名或密码不正确" in r.text and "nobody" in r.text
    r = client.post("/login", data={"username": "", "password": ""}, follow_redirects=False)
    assert r.status_code == 422 and "请输入用户名和密码" in r.text


def test_sign_in_refuses_other_sites_and_never_redirects_off_site(site):
    client, _ = site
    r = client.post("/login", data={"username": "zhang.san", "password": PASSWORD},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        r = login(client, next=target)
        assert r.headers["location"] == "/portal"
    assert login(client, next="/portal#consent").headers["location"] == "/portal#consent"


def test_pages_need_a_session_and_the_right_role(site):
    client, _ = site
    r = client.get("/window", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/window"
    login(client)
    r = client.get("/window")
    assert r.status_code == 403 and "仅供窗口工作人员使用" in r.text
    assert client.get("/api/v1/enterprises").status_code == 403  # the API checks the role too


def test_sign_out_ends_the_session(site):
    client, _ = site
    login(client)
    token = csrf_of(client.get("/portal").text)
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/api/v1/materials").status_code == 401


def test_bad_accounts_are_refused_with_reasons(site):
    _, runtime = site
    from materials_api.identity.accounts import AccountError, AccountService

    accounts = AccountService(runtime.sessions)
    for kwargs, code in (
        (dict(username="ab", password=PASSWORD), "username_invalid"),
        (dict(username="wang.wu", password="short"), "password_too_short"),
        (dict(username="wang.wu", password="xxwang.wuxx"), "password_contains_username"),
        (dict(username="zhang.san", password=PASSWORD), "username_taken"),
    ):
        with pytest.raises(AccountError) as exc:
            accounts.create_user("机构", display_name="王五", role=Role.ENTERPRISE, scope=USCC, **kwargs)
        assert exc.value.code == code
    with pytest.raises(AccountError) as exc:
        accounts.create_user("机构", "wang.wu", "王五", Role.ENTERPRISE, "91350100M000100Y44", password=PASSWORD)
    assert exc.value.code == "uscc_invalid"


def test_openid_connect_sign_in_against_a_local_provider(settings, evm, tmp_path):
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        issuer = f"http://localhost:{server.server_port}"
        settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret = issuer, "qiyema", "secret"
        settings.public_url = "http://testserver"
        runtime = Runtime.open(settings, client=evm, clock=MovableClock())
        try:
            app = create_app(runtime, reconcile=False)
            app.state.accounts.create_user("杨浦区市场监管局", "inspector.w", "王检查", Role.INSPECTOR,
                                           oidc_subject=f"{issuer}|wang")
            with TestClient(app, base_url="http://testserver") as client:
                assert "使用统一身份认证登录" in client.get("/login").text
                for sub, expected in (("wang", "/inspect"), ("stranger", None)):
                    start = client.get("/login/oidc", follow_redirects=False)
                    assert start.status_code == 303
                    authorize = start.headers["location"]
                    assert authorize.startswith(issuer) and "code_challenge_method=S256" in authorize
                    # The person signs in at the provider; it sends the browser back with a code.
                    back = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
                    callback = urlparse(back.headers["location"])
                    assert callback.path == "/login/oidc/callback"
                    done = client.get(f"{callback.path}?{callback.query}", follow_redirects=False)
                    if expected:
                        assert done.status_code == 303 and done.headers["location"] == expected
                        assert client.get("/inspect").status_code == 200
                    else:
                        assert done.status_code == 403 and "尚未开通" in done.text
                # A replayed or forged callback (state mismatch) opens nothing.
                client.cookies.clear()
                forged = client.get("/login/oidc/callback?code=abc&state=forged", follow_redirects=False)
                assert forged.status_code == 400 and "qiyema_session" not in forged.headers.get("set-cookie", "")
        finally:
            runtime.close()


def test_a_signed_in_person_scans_and_checks_files_on_the_public_pages(site):
    """/scan and the front door work for a signed-in person too: their scripts send the session's
    CSRF token (without it the cookie's POST is refused, as on every page)."""
    client, _ = site
    assert login(client).status_code == 303
    for path, call, body in (("/scan", "/api/v1/verify/code", {"code": "not a code"}),
                             ("/", "/api/v1/verify/material", {"sha256": "00" * 32, "bundle": {}})):
        token = csrf_of(client.get(path).text)
        assert token, path
        assert client.post(call, json=body).json()["code"] == "csrf_failed"
        answer = client.post(call, json=body, headers={"X-CSRF-Token": token})
        assert answer.status_code != 403 and answer.json().get("code") != "csrf_failed", answer.text
    client.cookies.clear()
    assert '<meta name="csrf-token" content="">' in client.get("/scan").text  # anonymous: none needed


def test_operators_list_unlock_and_reset_people_from_the_command_line(site, monkeypatch):
    from click.testing import CliRunner

    from materials_api.cli import main as cli

    client, runtime = site
    monkeypatch.setenv("QIYEMA_HOME", str(runtime.settings.home))
    if runtime.settings.database_url:
        monkeypatch.setenv("QIYEMA_DATABASE_URL", runtime.settings.database_url)
    else:
        monkeypatch.delenv("QIYEMA_DATABASE_URL", raising=False)
    cli_run = CliRunner().invoke
    for _ in range(5):
        login(client, password="wrong-password-1")
    assert login(client).status_code == 423
    listed = cli_run(cli, ["users", "list"]).output.splitlines()
    assert "福建示例科技有限公司\tzhang.san\t张三\tenterprise\t91350100M000100Y43\tlocked out" in listed
    assert "杨浦区行政服务中心\tclerk01\t李四\tclerk\t-\tactive" in listed

    unlocked = cli_run(cli, ["users", "unlock", "zhang.san"])
    assert unlocked.exit_code == 0 and "1 address(es) were locked out" in unlocked.output
    assert login(client).status_code == 303  # the person is back in at once
    assert client.get("/portal").status_code == 200

    new = "杨浦-new-horse-2027"
    reset = cli_run(cli, ["users", "reset-password", "zhang.san", "--password-stdin"], input=new + "\n")
    assert reset.exit_code == 0 and "signed out everywhere" in reset.output
    assert client.get("/portal", follow_redirects=False).status_code in (302, 303, 401)  # the session ended
    assert login(client).status_code == 401  # the old password no longer opens it
    assert login(client, password=new).status_code == 303

    for args, password, words in ((["users", "unlock", "nobody"], "", "user_not_found"),
                                  (["users", "reset-password", "nobody", "--password-stdin"], new, "user_not_found"),
                                  (["users", "reset-password", "zhang.san", "--password-stdin"], "short",
                                   "password_too_short")):
        refused = cli_run(cli, args, input=password + "\n")
        assert refused.exit_code == 2 and words in refused.output and "Traceback" not in refused.output, refused.output
