"""Pages for the public: the front door (`/`: scan, check a file against its proof, sign in, the
API), the verification page a scanned static code opens, and a scan page that reads a QR from
the camera or a photo. Mobile-first, Chinese, readable at a glance; no external
CDN (the QR decoder, jsQR, is served from the project's npm packages), no fonts fetched.

A copied code pointing at another host, or one signed by an unknown key, gets a red "not
genuine" page that shows nothing of the enterprise it names."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from chain.verdict import Status
from materials_api.api.deps import SESSION_COOKIE, CodesDep, MetricsDep, ViewsDep
from materials_api.platform.timefmt import calendar_day, beijing_time
from materials_api.web import labels
from materials_api.web.render import HOME, page, render
from materials_api.web.timeline import permits_timeline

router = APIRouter(tags=["pages"], include_in_schema=False)


def _record_row(item: dict, now: int) -> dict:
    """How one record reads on the page: its standing in the register, unless its own verdict
    (or its validity date) says otherwise."""
    label, css = labels.RECORD.get(item["status"], (item["status"], "SKIPPED"))
    if item["status"] == "valid" and item["valid_until"] and item["valid_until"] < now:
        label, css = "已过期", "INVALID"
    if item["verdict"]["status"] == "ERROR" and css == "VALID":
        label, css = "暂时无法核验", "ERROR"
    elif item["verdict"]["status"] == "INVALID" and css == "VALID":
        label, css = "核验未通过", "INVALID"
    return {"css": Status(css), "label": label, "kind_name": item["kind_name"], "number": item.get("number"),
            "until": calendar_day(item["valid_until"]), "certificate": f"/certificates/records/{item['id']}",
            "state": item["status"], "valid_from": item["valid_from"], "valid_until": item["valid_until"]}


@router.get("/V/{payload}", response_class=HTMLResponse)
@router.get("/v/{payload}", response_class=HTMLResponse)
def verification_page(payload: str, request: Request, service: CodesDep, views: ViewsDep, metrics: MetricsDep):
    # Verify the code exactly as it was scanned: this host, this path.
    scanned = f"{request.url.scheme}://{request.url.netloc}/V/{payload}"
    # A static code's page is kept as rendered while nothing behind it moved (the API's whole-answer
    # rule: the enterprise's stamp, rebuilt at most every 2 s); only the time of the check is new.
    enterprise_id = service.static_enterprise_id(scanned)
    stamp = views.stamp(enterprise_id) if enterprise_id is not None else None
    if stamp is not None:
        kept = views.cached_answer(_PAGE + scanned, enterprise_id, stamp, cache="page")
        if kept is not None:
            html, status_code, summary = kept
            metrics.verdict("code", summary)
            return HTMLResponse(html.replace(_CHECKED_AT, beijing_time(time.time())), status_code)
    response = _build_page(scanned, service, views, metrics)
    if stamp is not None:
        views.remember_answer(_PAGE + scanned, response, stamp)
    html, status_code, _ = response
    return HTMLResponse(html.replace(_CHECKED_AT, beijing_time(time.time())), status_code)


_PAGE = "page:"  # its own entries beside the API's answers
_CHECKED_AT = "\x00checked-at\x00"  # replaced on every answer: the time of this check


def _build_page(scanned: str, service, views, metrics) -> tuple[str, int, dict]:
    verdict = service.verify(scanned, consume=False)  # a page view (or a link preview) uses up nothing
    metrics.verdict("code", verdict)
    view = views.view(verdict, None)
    status = verdict.status if verdict.status in (Status.VALID, Status.INVALID) else Status.ERROR
    now = int(time.time())
    sections, addresses, standing, timeline = {}, [], None, None
    if view:
        for name in ("licence", "permit", "regulatory"):
            sections[name] = [_record_row(item, now) for item in view.get(name, [])]
        addresses = [lic["data"].get("addresses") for lic in view.get("licence", []) if lic["data"].get("addresses")]
        # The company's standing is its own answer, shown first: a genuine code of a company on
        # the abnormal list is not "all green".
        standing = labels.standing(view["enterprise"]["status"], sections["licence"] + sections["permit"])
        timeline = permits_timeline([{"kind_name": r["kind_name"], "valid_from": r["valid_from"],
                                      "valid_until": r["valid_until"], "state": r["state"]}
                                     for r in sections["licence"] + sections["permit"]], now)
    summary = verdict.as_dict()
    headline, next_step, colour = labels.headline(summary)
    html = render("verification.html", title=f"企业码核验 · {headline}", status=status, headline=headline,
                  next_step=next_step, colour=colour, view=view, sections=sections, standing=standing, timeline=timeline,
                  addresses=addresses, checks=verdict.checks, warnings=verdict.warnings, checked_at=_CHECKED_AT)
    return html, 503 if status == Status.ERROR else 200, summary


def _person(request: Request) -> dict:
    """For a signed-in person: the session's CSRF token (their scans then carry their role's view;
    the public pages' scripts send it with every POST), their name and their own page, for the
    bar with 返回 and 退出. Empty for the public."""
    secret = request.cookies.get(SESSION_COOKIE)
    found = request.app.state.accounts.session(secret) if secret else None
    if not found:
        return {"csrf": "", "who": "", "home": ""}
    principal, csrf, user = found
    return {"csrf": csrf, "who": f"{user.display_name} · {principal.organisation}", "home": HOME.get(principal.role, "")}


@router.get("/", response_class=HTMLResponse)
def front_door(request: Request):
    return page("home.html", title="企业码 · 材料银行", **_person(request))


@router.get("/scan", response_class=HTMLResponse)
def scan_page(request: Request):
    return page("scan.html", title="扫码核验企业码", **_person(request))
