"""`qiyema records follow URL`: an authority's change list, polled (GET URL?after=CURSOR → JSON
Lines {"cursor", "change"}), applied through the same feed as every other source, the cursor kept
in the database with the changes it covers. Read the way a stranger on the network cannot bend:
https with the authority's credential, no redirect to another host, bounded in bytes and time."""

from __future__ import annotations

import io
import json
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from chain.errors import Kind, QiyemaError
from materials_api.identity.api_keys import Principal
from materials_api.records.feed import ChangeResult, RecordFeed
from materials_api.records.models import RecordSourceCursor

class SourceError(QiyemaError):
    """The source did not answer a readable change list (`code` says why)."""

    def __init__(self, code: str, message: str):
        super().__init__(Kind.INVALID if code == "source_url" else Kind.UNAVAILABLE, code, message)


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class SourceAccess:
    """How the follower reaches an authority's change list: over https (plain http only on this
    machine, for tests and a local relay), with the credential the authority gave (a bearer
    token, a client certificate for mutual TLS, the CA that signed its server), never following
    a redirect to another host, and reading at most `max_bytes` a page within `timeout` seconds."""

    url: str
    token: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_file: Path | None = None
    max_bytes: int = 16 * 1024 * 1024
    timeout: float = 10.0

    def __post_init__(self):
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SourceError("source_url", f"{self.url[:200]}: an https:// URL")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise SourceError("source_url", f"{self.url[:200]}: plain http is refused off this machine (a change "
                                            "list read in the clear can be altered on the way): use https")

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")

    def get(self, url: str) -> bytes:
        import httpx

        origin = urllib.parse.urlsplit(self.url)
        deadline = time.monotonic() + self.timeout
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            tls = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.client_cert:
                tls.load_cert_chain(str(self.client_cert), str(self.client_key) if self.client_key else None)
            with httpx.Client(verify=tls, headers=headers, follow_redirects=False, timeout=self.timeout) as client:
                for _ in range(4):
                    with client.stream("GET", url) as answer:
                        if answer.is_redirect:
                            target = urllib.parse.urljoin(url, answer.headers.get("location", ""))
                            moved = urllib.parse.urlsplit(target)
                            if (moved.scheme, moved.netloc) != (origin.scheme, origin.netloc):
                                raise SourceError("source_redirect", f"{self.url[:200]}: redirected to another host "
                                                                     f"({moved.netloc[:100]}): not followed")
                            url = target
                            continue
                        if answer.status_code != 200:
                            raise SourceError("source_status", f"{self.url[:200]}: answered HTTP {answer.status_code}")
                        declared = answer.headers.get("content-length", "")
                        if declared.isdigit() and int(declared) > self.max_bytes:
                            raise SourceError("source_too_large", f"{self.url[:200]}: a page over {self.max_bytes} bytes")
                        body = bytearray()
                        for chunk in answer.iter_bytes():
                            body += chunk
                            if len(body) > self.max_bytes:
                                raise SourceError("source_too_large", f"{self.url[:200]}: a page over "
                                                                      f"{self.max_bytes} bytes")
                            if time.monotonic() > deadline:
                                raise SourceError("source_timeout", f"{self.url[:200]}: a page took over "
                                                                    f"{self.timeout:g} s")
                        return bytes(body)
                raise SourceError("source_redirect", f"{self.url[:200]}: too many redirects")
        except httpx.HTTPError as exc:
            raise SourceError("source_unreachable", f"{self.url[:200]}: {type(exc).__name__}: {exc}"[:400]) from None
        except (OSError, ssl.SSLError) as exc:  # a certificate or key file that cannot be read
            raise SourceError("source_credentials", f"{self.url[:200]}: {exc}"[:400]) from None


def follow_once(source: SourceAccess | str, feed: RecordFeed, principal: Principal, *, limit: int = 1_000) -> tuple[int, int]:
    """Read the source's changes after the stored cursor, page by page, until it has none;
    returns (changes read, changes refused)."""
    access = source if isinstance(source, SourceAccess) else SourceAccess(source)
    url = access.url
    read = refused = 0
    while True:
        with feed.sessions() as s:
            row = s.get(RecordSourceCursor, (principal.organisation_id, url))
            cursor = row.cursor if row else ""
        query = urllib.parse.urlencode({"after": cursor, "limit": limit})
        body = access.get(f"{url}{'&' if '?' in url else '?'}{query}")
        entries = []
        for number, line in enumerate(io.StringIO(body.decode("utf-8", "replace")), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries.append((str(entry["cursor"]), entry["change"]))
            except (ValueError, KeyError, TypeError):
                raise SourceError("source_malformed",
                                  f"{url}: line {number} is not {{\"cursor\": …, \"change\": {{…}}}}") from None
        if not entries:
            return read, refused
        last = entries[-1][0][:200]

        def advance(s: Session, results: list[ChangeResult]) -> None:
            held = s.get(RecordSourceCursor, (principal.organisation_id, url))
            if held is None:
                s.add(RecordSourceCursor(organisation_id=principal.organisation_id, source_url=url, cursor=last,
                                         applied=len(results)))
            else:
                held.cursor, held.applied = last, held.applied + len(results)

        results = feed.apply(principal, [change for _, change in entries], then=advance)
        read += len(results)
        refused += sum(1 for r in results if r.outcome == "refused")
