"""Staff sessions in a signed cookie, CSRF tokens, and the staff pages' settings.

- The session cookie holds {user id, session version, CSRF token}, signed with SECRET_KEY
  (itsdangerous, timestamped: it expires after STAFF_SESSION_HOURS). It is HttpOnly,
  SameSite=Lax, limited to /staff, and Secure behind https. Each request reloads the account:
  a deactivated account or a reset password (the session version moves on) ends its sessions.
- CSRF: every POST form carries the session's token (session-bound). The login form, before
  any session exists, uses a signed double-submit cookie.
- With SECRET_KEY empty a random key is made for this run (sessions end at restart) and a
  warning is logged.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

SESSION_COOKIE = "staff_session"
LOGIN_COOKIE = "staff_login_csrf"
COOKIE_PATH = "/staff"
LOGIN_TOKEN_SECONDS = 2 * 3600


class StaffSettings(BaseSettings):
    """STAFF_* environment variables (documented in .env.example)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    max_failed_logins: int = Field(5, alias="STAFF_MAX_FAILED_LOGINS", ge=1, le=100)
    lockout_minutes: float = Field(15, alias="STAFF_LOCKOUT_MINUTES", gt=0, le=24 * 60)
    session_hours: float = Field(10, alias="STAFF_SESSION_HOURS", gt=0, le=7 * 24)
    cookie_secure: bool = Field(False, alias="STAFF_COOKIE_SECURE")  # force Secure even behind http


@dataclass(frozen=True)
class Session:
    user_id: int
    version: int
    csrf: str


class Signer:
    """Signs and checks session cookies and login-form tokens."""

    def __init__(self, secret_key: str, session_seconds: int) -> None:
        if not secret_key:
            secret_key = secrets.token_urlsafe(48)
            log.warning("SECRET_KEY is empty: staff sessions are signed with a random key for this run")
        self.session_seconds = session_seconds
        self._sessions = URLSafeTimedSerializer(secret_key, salt="staff-session")
        self._login = URLSafeTimedSerializer(secret_key, salt="staff-login-csrf")

    def new_session(self, user_id: int, version: int) -> tuple[str, Session]:
        session = Session(user_id, version, secrets.token_urlsafe(32))
        value = self._sessions.dumps({"u": user_id, "v": version, "c": session.csrf})
        return value, session

    def read_session(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data = self._sessions.loads(value, max_age=self.session_seconds)
            return Session(int(data["u"]), int(data["v"]), str(data["c"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    def new_login_token(self) -> tuple[str, str]:
        """(cookie value, form token) for the login form."""
        token = secrets.token_urlsafe(32)
        return self._login.dumps(token), token

    def check_login_token(self, cookie: str | None, form_token: str) -> bool:
        if not cookie or not form_token:
            return False
        try:
            token = self._login.loads(cookie, max_age=LOGIN_TOKEN_SECONDS)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token, form_token)


def same_token(expected: str, given: str) -> bool:
    return bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())
