"""A local stand-in for Zalo's API: the cs message endpoint, the image upload and the OAuth
token refresh.

A real HTTP server (Starlette + uvicorn in a thread) that the app under test
talks to through ZALO_API_BASE_URL / ZALO_OAUTH_BASE_URL. It records every call,
keeps one valid access token and one valid refresh token (each refresh rotates
both and the old refresh token stops working, as on Zalo), can make the current
access token expire, and can answer a given error code. The image upload
(POST /v2.0/oa/upload/image, multipart field `file`, JPEG/PNG of at most 1 MB)
checks the access token as cs does and answers {"error": 0, "data": {"attachment_id"}};
an image message is a cs message whose attachment is a "media" template.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.appserver import free_port

APP_ID = "4321987654321"
OA_SECRET_KEY = "oa-secret-for-tests"
APP_SECRET = "app-secret-for-tests"
EXPIRED = -216
MAX_IMAGE_BYTES = 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png")


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answer: dict[str, Any]


@dataclass
class ZaloStandIn:
    port: int = field(default_factory=free_port)
    access_token: str = "access-0"
    refresh_token: str = "refresh-0"
    calls: list[Call] = field(default_factory=list)
    fail_with: int | None = None  # answer every cs call with this error code
    fail_upload_with: int | None = None  # answer every image upload with this error code
    attachment_ids: set[str] = field(default_factory=set)  # ids the upload handed out
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What the app needs to use this stand-in."""
        return {
            "ZALO_APP_ID": APP_ID,
            "ZALO_OA_SECRET_KEY": OA_SECRET_KEY,
            "ZALO_APP_SECRET": APP_SECRET,
            "ZALO_ACCESS_TOKEN": self.access_token,
            "ZALO_REFRESH_TOKEN": self.refresh_token,
            "ZALO_API_BASE_URL": self.url,
            "ZALO_OAUTH_BASE_URL": self.url,
            "ZALO_PROACTIVE": "false",
        }

    # --- controls for tests ---

    def expire_access_token(self) -> None:
        """From now on the current access token is refused with -216 until a refresh."""
        with self._lock:
            self.access_token = f"access-expired-{next(self._counter)}"

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                c.body["message"]
                for c in self.calls
                if c.path.endswith("/message/cs")
                and c.answer.get("error") == 0
                and c.body.get("recipient", {}).get("user_id") == user_id
            ]

    def uploads(self) -> list[Call]:
        """Image uploads (body: filename, content_type, size), accepted or not."""
        with self._lock:
            return [c for c in self.calls if c.path.endswith("/upload/image")]

    def images_to(self, user_id: str) -> list[str]:
        """The attachment ids of the image messages a user got."""
        found = []
        for message in self.messages_to(user_id):
            payload = message.get("attachment", {}).get("payload", {})
            if payload.get("template_type") == "media":
                found += [e.get("attachment_id") for e in payload.get("elements", [])]
        return found

    def calls_for(self, user_id: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.body.get("recipient", {}).get("user_id") == user_id]

    def refreshes(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith("/access_token")]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        return predicate()

    # --- endpoints ---

    async def _cs(self, request: Request) -> JSONResponse:
        body = await request.json()
        token = request.headers.get("access_token", "")
        with self._lock:
            if token != self.access_token:
                answer: dict[str, Any] = {"error": EXPIRED, "message": "Access token is invalid"}
            elif self.fail_with is not None:
                answer = {"error": self.fail_with, "message": "error for tests"}
            elif not self._known_attachments(body):
                answer = {"error": -201, "message": "attachment_id is invalid"}
            else:
                answer = {
                    "error": 0,
                    "message": "Success",
                    "data": {
                        "message_id": f"m{next(self._counter)}",
                        "user_id": body.get("recipient", {}).get("user_id"),
                    },
                }
            self.calls.append(Call(request.url.path, dict(request.headers), body, answer))
        return JSONResponse(answer)

    def _known_attachments(self, body: dict[str, Any]) -> bool:
        """An image message must name an attachment id this stand-in handed out."""
        payload = (body.get("message") or {}).get("attachment", {}).get("payload", {})
        if payload.get("template_type") != "media":
            return True
        elements = payload.get("elements") or []
        return bool(elements) and all(e.get("attachment_id") in self.attachment_ids for e in elements)

    async def _upload_image(self, request: Request) -> JSONResponse:
        token = request.headers.get("access_token", "")
        form = await request.form()
        upload = form.get("file")
        data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
        content_type = getattr(upload, "content_type", "") or ""
        filename = getattr(upload, "filename", None)
        body = {"filename": filename, "content_type": content_type, "size": len(data)}
        with self._lock:
            if token != self.access_token:
                answer: dict[str, Any] = {"error": EXPIRED, "message": "Access token is invalid"}
            elif self.fail_upload_with is not None:
                answer = {"error": self.fail_upload_with, "message": "error for tests"}
            elif not data or content_type not in IMAGE_TYPES or len(data) > MAX_IMAGE_BYTES:
                answer = {"error": -210, "message": "file is empty, too big or not JPEG/PNG"}
            else:
                attachment_id = f"att{next(self._counter)}"
                self.attachment_ids.add(attachment_id)
                answer = {"error": 0, "message": "Success", "data": {"attachment_id": attachment_id}}
            self.calls.append(Call(request.url.path, dict(request.headers), body, answer))
        return JSONResponse(answer)

    async def _refresh(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        with self._lock:
            if (
                request.headers.get("secret_key") != APP_SECRET
                or form.get("app_id") != APP_ID
                or form.get("grant_type") != "refresh_token"
                or form.get("refresh_token") != self.refresh_token
            ):
                answer: dict[str, Any] = {
                    "error": -14014,
                    "error_name": "Invalid refresh token",
                    "error_description": "refresh token is invalid or used",
                }
            else:
                n = next(self._counter)
                self.access_token, self.refresh_token = f"access-{n}", f"refresh-{n}"
                answer = {
                    "access_token": self.access_token,
                    "refresh_token": self.refresh_token,
                    "expires_in": "90000",
                }
            self.calls.append(Call(request.url.path, dict(request.headers), form, answer))
        return JSONResponse(answer)

    # --- lifecycle ---

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/v3.0/oa/message/cs", self._cs, methods=["POST"]),
                Route("/v2.0/oa/upload/image", self._upload_image, methods=["POST"]),
                Route("/v4/oa/access_token", self._refresh, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="zalo-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Zalo stand-in did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
