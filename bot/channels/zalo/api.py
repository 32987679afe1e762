"""Zalo OA API v3: webhook signatures, message bodies, and the client that sends them.

- Webhook: header `X-ZEvent-Signature: mac=<hex>` where hex is
  sha256(app_id + raw body + timestamp + OA secret key), `timestamp` being the
  one inside the JSON body.
- Sending: POST {api}/v3.0/oa/message/cs with an `access_token` header; success
  only when the JSON answer says `"error": 0`.
- Tokens: an access token lasts about an hour; it is renewed with the refresh
  token at POST {oauth}/v4/oa/access_token (form: refresh_token, app_id,
  grant_type=refresh_token; header secret_key = the app secret). The answer
  carries a new refresh token too: the old one works only once, so both are
  stored in the database before anything else uses them.
- Images: POST {api}/v2.0/oa/upload/image (multipart, field `file`; JPEG or PNG, at most 1 MB;
  header `access_token`) answers {"error": 0, "data": {"attachment_id": ...}}; Zalo keeps the
  image about 7 days. A cs message shows it with attachment {"type": "template", "payload":
  {"template_type": "media", "elements": [{"media_type": "image", "attachment_id": ...}]}}.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from bot.channels.zalo.models import ZaloToken
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ZEvent-Signature"
MAX_BUTTONS = 5  # buttons one Zalo message carries
MAX_TITLE = 100  # characters of a button title
MAX_TEXT = 2000  # characters of a consultation text message
TOKEN_ERRORS = frozenset({-216, -124})  # access token invalid / expired
CS_PATH = "/v3.0/oa/message/cs"
REFRESH_PATH = "/v4/oa/access_token"
UPLOAD_IMAGE_PATH = "/v2.0/oa/upload/image"
MAX_IMAGE_BYTES = 1024 * 1024  # Zalo's limit for an uploaded image
IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png"}  # the only image kinds Zalo takes


# --- webhook signatures ------------------------------------------------------------------------


def compute_signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """The hex digest Zalo puts after "mac=" in X-ZEvent-Signature."""
    data = app_id.encode() + body + timestamp.encode() + secret_key.encode()
    return hashlib.sha256(data).hexdigest()


def signature_header(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    return f"mac={compute_signature(app_id, body, timestamp, secret_key)}"


def verify_signature(header: str | None, app_id: str, body: bytes, timestamp: str, secret_key: str) -> bool:
    """Constant-time check of the header against our own computation (with our app id)."""
    if not header or not app_id or not secret_key:
        return False
    supplied = header.strip()
    if supplied.lower().startswith("mac="):
        supplied = supplied[4:].strip()
    expected = compute_signature(app_id, body, timestamp, secret_key)
    return hmac.compare_digest(supplied.lower().encode(), expected.encode())


# --- message bodies ----------------------------------------------------------------------------


def to_zalo_buttons(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rasa buttons as Zalo `oa.query.hide` buttons.

    A click sends the payload back to the OA as a `user_send_text` event whose
    text is the payload, without showing it in the citizen's chat: the same as
    a Telegram callback or the web chat's payload.
    """
    return [
        {"title": str(b.get("title", ""))[:MAX_TITLE], "type": "oa.query.hide", "payload": str(b["payload"])}
        for b in buttons
        if b.get("payload")
    ]


def build_bodies(
    user_id: str, message: dict[str, Any], more_text: str, quote_id: str | None = None
) -> list[dict[str, Any]]:
    """The cs request bodies for one chat message ({"text", "buttons"}).

    Over MAX_BUTTONS buttons: the rest follow in extra messages introduced by
    `more_text`. `quote_id` (the citizen's msg_id) is quoted by the first one.
    """
    text = str(message.get("text") or "").strip()[:MAX_TEXT]
    buttons = to_zalo_buttons(message.get("buttons") or [])
    chunks = [buttons[i : i + MAX_BUTTONS] for i in range(0, len(buttons), MAX_BUTTONS)] or [[]]
    bodies: list[dict[str, Any]] = []
    for index, chunk in enumerate(chunks):
        body_text = text if index == 0 else more_text
        if not body_text:
            continue
        zalo_message: dict[str, Any] = {"text": body_text}
        if chunk:
            zalo_message["attachment"] = {"type": "template", "payload": {"buttons": chunk}}
        if index == 0 and quote_id:
            zalo_message["quote_message_id"] = quote_id
        bodies.append({"recipient": {"user_id": user_id}, "message": zalo_message})
    return bodies


def image_body(user_id: str, attachment_id: str) -> dict[str, Any]:
    """The cs request body of an image (an attachment id from the upload API), without text."""
    element = {"media_type": "image", "attachment_id": attachment_id}
    payload = {"template_type": "media", "elements": [element]}
    attachment = {"type": "template", "payload": payload}
    return {"recipient": {"user_id": user_id}, "message": {"attachment": attachment}}


# --- the client --------------------------------------------------------------------------------


@dataclass
class ApiResult:
    """The outcome of one API call: ok only when Zalo answered "error": 0."""

    ok: bool
    error: int | None = None  # Zalo's error code, when it answered
    reason: str = ""  # short, log-safe
    transient: bool = False  # network trouble or HTTP 5xx/429: worth retrying later
    data: dict[str, Any] | None = None  # the answer's "data", when ok


class TokenStore:
    """Access and refresh tokens: the database row when there is one, else the settings."""

    def __init__(self, db: Database, access_token: str, refresh_token: str) -> None:
        self.db = db
        self._initial = (access_token, refresh_token)
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.loaded = False

    def load(self) -> None:
        with self.db.session() as session:
            row = session.get(ZaloToken, 1)
            if row is not None:
                self.access_token, self.refresh_token = row.access_token, row.refresh_token
        self.loaded = True

    def save(self, access_token: str, refresh_token: str) -> None:
        with self.db.session() as session:
            row = session.get(ZaloToken, 1)
            if row is None:
                session.add(ZaloToken(id=1, access_token=access_token, refresh_token=refresh_token))
            else:
                row.access_token, row.refresh_token, row.updated_at = access_token, refresh_token, utcnow()
        self.access_token, self.refresh_token = access_token, refresh_token


class ZaloClient:
    """Sends consultation messages; renews the access token once when Zalo says it is stale."""

    def __init__(
        self,
        db: Database,
        *,
        app_id: str,
        app_secret: str,
        access_token: str,
        refresh_token: str,
        api_base_url: str,
        oauth_base_url: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.api_base_url = api_base_url.rstrip("/")
        self.oauth_base_url = oauth_base_url.rstrip("/")
        self.tokens = TokenStore(db, access_token, refresh_token)
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._refresh_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: Any, db: Database, transport: httpx.AsyncBaseTransport | None = None
    ) -> ZaloClient:
        return cls(
            db,
            app_id=settings.zalo_app_id,
            app_secret=settings.zalo_app_secret,
            access_token=settings.zalo_access_token,
            refresh_token=settings.zalo_refresh_token,
            api_base_url=settings.zalo_api_base_url,
            oauth_base_url=settings.zalo_oauth_base_url,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send_cs(self, body: dict[str, Any]) -> ApiResult:
        """POST one consultation message; on a token error refresh and retry once."""
        if not self.tokens.loaded:
            await asyncio.to_thread(self.tokens.load)
        used = self.tokens.access_token
        result = await self._post_cs(body, used)
        if result.error in TOKEN_ERRORS:
            log.info("zalo access token rejected (error %s): refreshing", result.error)
            if await self.refresh(used):
                result = await self._post_cs(body, self.tokens.access_token)
        return result

    async def _post_cs(self, body: dict[str, Any], access_token: str) -> ApiResult:
        try:
            response = await self.http.post(
                self.api_base_url + CS_PATH, json=body, headers={"access_token": access_token}
            )
        except httpx.HTTPError as exc:
            return ApiResult(False, reason=f"network error ({type(exc).__name__})", transient=True)
        return _result(response)

    async def upload_image(self, data: bytes, filename: str, media_type: str) -> ApiResult:
        """Upload an image (JPEG/PNG, <= 1 MB); ok with data["attachment_id"] only when error is 0."""
        if not self.tokens.loaded:
            await asyncio.to_thread(self.tokens.load)
        used = self.tokens.access_token
        result = await self._post_image(data, filename, media_type, used)
        if result.error in TOKEN_ERRORS:
            log.info("zalo access token rejected on upload (error %s): refreshing", result.error)
            if await self.refresh(used):
                result = await self._post_image(data, filename, media_type, self.tokens.access_token)
        if result.ok and not isinstance((result.data or {}).get("attachment_id"), str):
            return ApiResult(False, reason="upload answered without attachment_id")
        return result

    async def _post_image(self, data: bytes, filename: str, media_type: str, access_token: str) -> ApiResult:
        try:
            response = await self.http.post(
                self.api_base_url + UPLOAD_IMAGE_PATH,
                files={"file": (filename, data, media_type)},
                headers={"access_token": access_token},
            )
        except httpx.HTTPError as exc:
            return ApiResult(False, reason=f"network error ({type(exc).__name__})", transient=True)
        return _result(response)

    async def refresh(self, stale_token: str) -> bool:
        """Renew the tokens unless another task already did; True when a fresh token is ready."""
        async with self._refresh_lock:
            if self.tokens.access_token != stale_token:
                return True  # renewed while we waited for the lock
            if not self.tokens.refresh_token or not self.app_secret:
                log.warning("zalo access token expired and no refresh token or app secret is set")
                return False
            try:
                response = await self.http.post(
                    self.oauth_base_url + REFRESH_PATH,
                    data={
                        "refresh_token": self.tokens.refresh_token,
                        "app_id": self.app_id,
                        "grant_type": "refresh_token",
                    },
                    headers={"secret_key": self.app_secret},
                )
                data = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("zalo token refresh failed: %s", type(exc).__name__)
                return False
            access, refresh = data.get("access_token"), data.get("refresh_token")
            if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
                log.warning("zalo token refresh refused (error %s)", data.get("error"))
                return False
            await asyncio.to_thread(self.tokens.save, access, refresh)
            log.info("zalo access token refreshed and stored")
            return True


def _result(response: httpx.Response) -> ApiResult:
    if response.status_code == 429 or response.status_code >= 500:
        return ApiResult(False, reason=f"HTTP {response.status_code}", transient=True)
    try:
        data = response.json()
    except ValueError:
        return ApiResult(False, reason=f"HTTP {response.status_code}, not JSON")
    error = data.get("error") if isinstance(data, dict) else None
    if error == 0:
        payload = data.get("data")
        return ApiResult(True, error=0, data=payload if isinstance(payload, dict) else None)
    if isinstance(error, int):
        return ApiResult(False, error=error, reason=f"zalo error {error}")
    return ApiResult(False, reason=f"HTTP {response.status_code}, no error code")
