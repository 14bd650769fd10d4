"""People's accounts: passwords (argon2id), sessions, lock-out, and OpenID Connect sign-in.

Passwords are chosen by people, so they get a memory-hard hash (argon2id, RFC 9106); API keys
have 256 bits of entropy and keep their fast hash (security.py). A session cookie carries a
random secret whose SHA-256 is the session's id, so a database leak opens no session. Each
session has its own CSRF token, which every state-changing request made with the cookie must
echo in a header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from materials_api.identity.api_keys import ROLES_WITH_SCOPE, Principal
from materials_api.identity.models import Organisation, Role, SignInFailures, User, UserSession
from chain.clock import SYSTEM, Clock
from materials_api.platform.errors import Kind, ServiceError

# RFC 9106's second recommended option (64 MiB, 3 passes), 2 lanes for a 2-core server.
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2)
# Verified against when the user does not exist, so timing does not reveal which names exist.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,80}$")
MIN_PASSWORD = 10


class AccountError(ServiceError):
    """A refused account operation; `message` is for the person (Chinese)."""


@dataclass(frozen=True)
class SignedIn:
    secret: str  # goes in the cookie, never stored
    csrf_token: str
    user: User
    expires_at: float


def check_password_policy(username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(Kind.INVALID, "password_too_short", f"密码至少需要 {MIN_PASSWORD} 个字符")
    if username.lower() in password.lower():
        raise AccountError(Kind.INVALID, "password_contains_username", "密码不能包含用户名")
    if len(set(password)) < 4:
        raise AccountError(Kind.INVALID, "password_too_simple", "密码过于简单，请混用不同字符")


def _session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccountService:
    def __init__(self, sessions: sessionmaker, *, session_ttl: float = 8 * 3600, max_failures: int = 5,
                 lockout_seconds: float = 15 * 60, clock: Clock = SYSTEM):
        self.sessions = sessions
        self.clock = clock  # lock-outs and sessions end by it
        self.session_ttl = session_ttl
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds

    # --- accounts ---------------------------------------------------------------------------------
    def create_user(self, org_name: str, username: str, display_name: str, role: Role, scope: str | None = None,
                    password: str | None = None, oidc_subject: str | None = None) -> User:
        if not _USERNAME.match(username):
            raise AccountError(Kind.INVALID, "username_invalid", "用户名须为 3–80 位字母、数字或 _ . @ -")
        if role in ROLES_WITH_SCOPE and not scope:
            raise AccountError(Kind.INVALID, "scope_missing", f"{role.value} 账号需要指定范围（{ROLES_WITH_SCOPE[role]}）")
        if role not in ROLES_WITH_SCOPE and scope:
            raise AccountError(Kind.INVALID, "scope_unexpected", f"{role.value} 账号不带范围")
        if role is Role.ENTERPRISE:
            from codes.uscc import UsccError, validate

            try:
                scope = validate(scope)
            except UsccError as exc:
                raise AccountError(Kind.INVALID, "uscc_invalid", f"统一社会信用代码无效：{exc}") from None
        if password is None and oidc_subject is None:
            raise AccountError(Kind.INVALID, "credential_missing", "需要密码或统一身份认证账号")
        if password is not None:
            check_password_policy(username, password)
        with self.sessions.begin() as s:
            org = s.scalar(select(Organisation).where(Organisation.name == org_name))
            if org is None:
                org = Organisation(name=org_name)
                s.add(org)
                s.flush()
            user = User(organisation_id=org.id, username=username, display_name=display_name, role=role.value,
                        scope=scope, password_hash=HASHER.hash(password) if password else None,
                        oidc_subject=oidc_subject)
            s.add(user)
            try:
                s.flush()
            except IntegrityError:
                raise AccountError(Kind.CONFLICT, "username_taken", f"用户名 {username} 已被使用") from None
            return user

    def people(self) -> list[tuple[User, str, bool]]:
        """Every account with its organisation's name and whether any address is locked out of it
        now, by organisation then user name (`qiyema users list`)."""
        now = self.clock.time()
        with self.sessions() as s:
            locked = set(s.scalars(select(SignInFailures.username).where(SignInFailures.locked_until > now)))
            rows = s.execute(select(User, Organisation.name).join(Organisation, Organisation.id == User.organisation_id)
                             .order_by(Organisation.name, User.username)).all()
        return [(user, org, user.username in locked) for user, org in rows]

    def reset_password(self, username: str, password: str) -> User:
        """A new password (the policy applies); every session of the account ends and its
        lock-outs are lifted: the person signs in again with the new password."""
        check_password_policy(username, password)
        with self.sessions.begin() as s:
            user = self._user(s, username)
            user.password_hash = HASHER.hash(password)
            s.execute(update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
                      .values(revoked_at=self.clock.time()))
            s.execute(delete(SignInFailures).where(SignInFailures.username == username))
            return user

    def unlock(self, username: str) -> int:
        """Lift the account's lock-outs (from every address) and forget its failures; how many
        addresses were locked."""
        now = self.clock.time()
        with self.sessions.begin() as s:
            self._user(s, username)
            locked = s.scalar(select(func.count()).select_from(SignInFailures).where(
                SignInFailures.username == username, SignInFailures.locked_until > now))
            s.execute(delete(SignInFailures).where(SignInFailures.username == username))
            return locked

    @staticmethod
    def _user(s, username: str) -> User:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise AccountError(Kind.NOT_FOUND, "user_not_found", f"没有用户 {username} (no user {username})")
        return user

    # --- sign-in ----------------------------------------------------------------------------------
    def sign_in(self, username: str, password: str, address: str = "unknown", now: float | None = None) -> SignedIn:
        """Check a password. Five failures in a row for this name from this address lock that
        pair for 15 minutes (a person elsewhere is not locked out by a stranger's guesses); the
        answers and their timing are the same whether the name exists or not."""
        now = self.clock.time() if now is None else now
        username = username[:80]
        with self.sessions() as s:
            locked_until = s.scalar(select(SignInFailures.locked_until).where(
                SignInFailures.username == username, SignInFailures.address == address)) or 0.0
            user = s.scalar(select(User).where(User.username == username))
        if locked_until > now:
            _verify(_DUMMY_HASH, password)  # the same time as any other answer
            minutes = max(1, round((locked_until - now) / 60))
            raise AccountError(Kind.LOCKED, "account_locked",
                               f"连续输错密码次数过多，本设备的登录已暂停，请 {minutes} 分钟后再试")
        usable = user is not None and user.password_hash is not None and user.disabled_at is None
        if not _verify(user.password_hash if usable else _DUMMY_HASH, password) or not usable:
            failures = self._count_failure(username, address, now)
            if failures >= self.max_failures:
                raise AccountError(Kind.LOCKED, "account_locked",
                                   f"连续输错密码 {self.max_failures} 次，本设备的登录已暂停 "
                                   f"{max(1, int(self.lockout_seconds // 60))} 分钟")
            raise AccountError(Kind.UNAUTHENTICATED, "login_failed",
                               f"用户名或密码不正确（再错 {self.max_failures - failures} 次将暂停本设备的登录）")
        with self.sessions.begin() as s:
            s.execute(delete(SignInFailures).where(SignInFailures.username == username,
                                                   SignInFailures.address == address))
            if HASHER.check_needs_rehash(user.password_hash):
                s.execute(update(User).where(User.id == user.id).values(password_hash=HASHER.hash(password)))
        return self.open_session(user, now)

    def _count_failure(self, username: str, address: str, now: float) -> int:
        """One more failure for (name, address), counted atomically (two wrong passwords at once
        both count); the fifth locks the pair and starts the count again. Returns the count."""
        where = (SignInFailures.username == username, SignInFailures.address == address)
        for _ in range(3):
            try:
                with self.sessions.begin() as s:
                    if not s.execute(update(SignInFailures).where(*where).values(
                            failures=SignInFailures.failures + 1, updated_at=now)).rowcount:
                        s.add(SignInFailures(username=username, address=address, failures=1, locked_until=0.0,
                                             updated_at=now))
                        s.flush()
                    failures = s.scalar(select(SignInFailures.failures).where(*where))
                    if failures >= self.max_failures:
                        s.execute(update(SignInFailures).where(*where).values(
                            failures=0, locked_until=now + self.lockout_seconds))
                    return failures
            except IntegrityError:
                continue  # another failure made the row first: count on it
        return 1  # pragma: no cover - three lost races in a row

    def forget_failures(self, older_than: float, now: float | None = None) -> int:
        """Drop failure counts not touched for `older_than` seconds (the background loop)."""
        now = self.clock.time() if now is None else now
        with self.sessions.begin() as s:
            return s.execute(delete(SignInFailures).where(SignInFailures.updated_at < now - older_than,
                                                          SignInFailures.locked_until < now)).rowcount

    def open_session(self, user: User, now: float | None = None) -> SignedIn:
        now = self.clock.time() if now is None else now
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.sessions.begin() as s:
            s.add(UserSession(id=_session_id(secret), user_id=user.id, csrf_token=csrf, created_at=now,
                              expires_at=now + self.session_ttl))
        return SignedIn(secret, csrf, user, now + self.session_ttl)

    def sign_out(self, secret: str) -> None:
        with self.sessions.begin() as s:
            s.execute(update(UserSession).where(UserSession.id == _session_id(secret))
                      .values(revoked_at=self.clock.time()))

    def session(self, secret: str, now: float | None = None) -> tuple[Principal, str, User] | None:
        """The principal, CSRF token and user of a live session cookie, or None."""
        now = self.clock.time() if now is None else now
        with self.sessions() as s:
            row = s.execute(
                select(UserSession, User, Organisation.name)
                .join(User, User.id == UserSession.user_id)
                .join(Organisation, Organisation.id == User.organisation_id)
                .where(UserSession.id == _session_id(secret))).first()
        if row is None:
            return None
        sess, user, org_name = row
        if sess.revoked_at is not None or sess.expires_at <= now or user.disabled_at is not None:
            return None
        principal = Principal(None, user.organisation_id, org_name, Role(user.role), user.scope, user_id=user.id)
        return principal, sess.csrf_token, user

    # --- OpenID Connect ---------------------------------------------------------------------------
    def sign_in_oidc(self, issuer: str, subject: str) -> SignedIn:
        """A person the identity provider vouched for; they must have been given an account
        (linked to `<issuer>|<sub>`) first: the provider proves who they are, we decide what
        they may do."""
        with self.sessions() as s:
            user = s.scalar(select(User).where(User.oidc_subject == f"{issuer}|{subject}"))
        if user is None or user.disabled_at is not None:
            raise AccountError(Kind.FORBIDDEN, "oidc_unknown_user", "该统一身份认证账号尚未开通本平台权限，请联系管理员")
        return self.open_session(user)


def csrf_matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), presented.encode())


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
