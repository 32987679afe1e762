"""A local stand-in for Telegram's Bot API: a real HTTP server the real PTB client talks to.

Point the app at it with TELEGRAM_API_BASE_URL=<standin.base_url> (PTB appends the
token). It implements the methods PTB and our channel use, records every call,
serves scripted updates through getUpdates (long polling with its timeout), and
can be told to refuse: 429 with parameters.retry_after for the next N calls of a
method, or 403 "Forbidden: bot was blocked by the user" for a chat.

Photos: sendPhoto takes an upload (multipart; a new file_id is made, counted in `uploads`) or
a known file_id (an unknown one is refused like Telegram does); getFile and the file URL
(/file/bot<token>/<path>) serve what was uploaded or pushed with `photo_message`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.appserver import free_port

# One counter for every test module: chats of different modules never meet in the session's app.
_chat_ids = itertools.count(int(time.time()) % 100_000 * 1000 + 1)


def new_chat_id() -> int:
    """A Telegram chat (and user) id no other test of this run uses."""
    return next(_chat_ids)


MAX_CAPTION = 1024


@dataclass
class Upload:
    """A file posted in a multipart request (e.g. sendPhoto's photo)."""

    filename: str
    data: bytes


JSON_FIELDS = {"reply_markup", "commands", "allowed_updates", "entities", "scope", "link_preview_options"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def caption(self) -> str:
        return str(self.params.get("caption", ""))

    @property
    def upload(self) -> Upload | None:
        """The file this call uploaded (sendPhoto with bytes), None for a file_id or none."""
        value = self.params.get("photo")
        return value if isinstance(value, Upload) else None

    @property
    def keyboard(self) -> list[list[dict[str, Any]]]:
        markup = self.params.get("reply_markup") or {}
        return markup.get("inline_keyboard", []) if isinstance(markup, dict) else []


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramStandIn:
    def __init__(self, token: str = "123456:TEST", username: str = "phuong_test_bot") -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Trợ lý phường",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.port = free_port()
        self.staff_group = -1_000_000_777  # the staff's group chat (STAFF_TELEGRAM_CHAT_ID)
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.blocked: set[int] = set()
        self.sent: dict[int, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}  # file_id -> bytes (uploaded or pushed)
        self.uploads = 0  # sendPhoto calls that uploaded bytes
        self.rate: float | None = None  # see limit_rate
        self._window: collections.deque[float] = collections.deque()
        self.rate_refusals = 0
        self.rate_retry_after = 1
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._lock = threading.Condition()
        self._closing = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def env(self) -> dict[str, str]:
        """Environment for an app that talks to this stand-in (long polling), with the staff group."""
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_API_BASE_URL": self.base_url,
            "TELEGRAM_WEBHOOK_URL": "",
            "STAFF_TELEGRAM_CHAT_ID": str(self.staff_group),
        }

    @property
    def username(self) -> str:
        return str(self.bot_user["username"])

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="telegram-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("telegram stand-in did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._closing = True  # long polls in flight return at once
        time.sleep(0.1)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- scripting --------------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (an update_id is assigned)."""
        with self._lock:
            update = {"update_id": next(self._update_ids), **update}
            self.updates.append(update)
            self._lock.notify_all()
        return update

    def user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Công dân", "language_code": "vi"}

    def chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": "Tổ dân phố 1"}
        return {"id": chat_id, "type": "private", "first_name": "Công dân"}

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        from_id: int | None = None,
        mention: bool = False,
        reply_to: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Push a message update; a leading /command and @mentions get their entities."""
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.user(from_id or abs(chat_id)),
            **extra,
        }
        if text is not None:
            if mention:
                text = f"@{self.username} {text}"
            message["text"] = text
            entities = []
            if text.startswith("/"):
                entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(text.split()[0])})
            at = text.find(f"@{self.username}")
            if at >= 0 and not text.startswith("/"):
                entities.append(
                    {
                        "type": "mention",
                        "offset": utf16_len(text[:at]),
                        "length": utf16_len(self.username) + 1,
                    }
                )
            if entities:
                message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return self.push({"message": message})

    def add_file(self, data: bytes) -> list[dict[str, Any]]:
        """Keep bytes as a Telegram file; returns the PhotoSize list a message carries."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            file_id = f"AgACAgI{digest[:24]}{next(self._ids)}"
            self.files[file_id] = data
        small = {"file_id": file_id + "s", "file_unique_id": digest[:12] + "s", "width": 90, "height": 90}
        self.files[small["file_id"]] = data
        large = {"file_id": file_id, "file_unique_id": digest[:12], "width": 800, "height": 600}
        return [{**small, "file_size": len(data)}, {**large, "file_size": len(data)}]

    def photo_message(
        self, chat_id: int, data: bytes, caption: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Push a message with a photo (its bytes downloadable through getFile)."""
        if caption is not None:
            extra["caption"] = caption
        return self.message(chat_id, None, photo=self.add_file(data), **extra)

    def press(self, sent: dict[str, Any], data: str, from_id: int | None = None) -> dict[str, Any]:
        """Push a callback query as if a button of a message the bot sent was pressed."""
        chat_id = sent["chat"]["id"]
        query = {
            "id": str(next(self._ids)),
            "from": self.user(from_id or abs(chat_id)),
            "chat_instance": f"ci{chat_id}",
            "message": sent,
            "data": data,
        }
        return self.push({"callback_query": query})

    def member_update(self, chat_id: int, status: str) -> dict[str, Any]:
        """Push a my_chat_member update: the bot's status in the chat changed (kicked, left...)."""
        change = {
            "chat": self.chat(chat_id),
            "from": self.user(abs(chat_id)),
            "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": self.bot_user},
            "new_chat_member": {"status": status, "user": self.bot_user, "until_date": 0},
        }
        return self.push({"my_chat_member": change})

    def fail_next(
        self, method: str, times: int = 1, *, retry_after: int = 1, status: int = 429, description: str = ""
    ) -> None:
        """Refuse the next `times` calls of `method`: 429 with parameters.retry_after by default."""
        body: dict[str, Any] = {"ok": False, "error_code": status}
        if status == 429:
            body["description"] = description or f"Too Many Requests: retry after {retry_after}"
            body["parameters"] = {"retry_after": retry_after}
        else:
            body["description"] = description or "Bad Request: chat not found"
        with self._lock:
            self.failures.setdefault(method, []).extend([(status, body)] * times)

    def limit_rate(self, per_second: float | None, retry_after: int = 1) -> None:
        """Like Telegram's flood control: sendMessage beyond `per_second` in any 1 s window
        answers 429 with parameters.retry_after (None switches the limit off)."""
        with self._lock:
            self.rate = per_second
            self.rate_retry_after = retry_after
            self._window.clear()

    def _over_rate(self, now: float) -> bool:
        """Called with the lock held, for sendMessage: True if this call exceeds the rate."""
        if self.rate is None:
            return False
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate:
            self.rate_refusals += 1
            return True
        self._window.append(now)
        return False

    def block(self, chat_id: int) -> None:
        """Sends to this chat answer 403 "Forbidden: bot was blocked by the user"."""
        with self._lock:
            self.blocked.add(chat_id)

    # --- inspection -------------------------------------------------------------------------

    def calls_of(self, method: str, chat_id: int | None = None, since: int = 0) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls[since:]
                if c.method == method and (chat_id is None or c.chat_id == chat_id)
            ]

    def mark(self) -> int:
        """A position in the call log, for `since=`."""
        with self._lock:
            return len(self.calls)

    def wait_for(
        self,
        method: str,
        chat_id: int | None = None,
        *,
        count: int = 1,
        since: int = 0,
        status: int | None = 200,
        until: Callable[[list[Call]], bool] | None = None,
        timeout: float = 30.0,
    ) -> list[Call]:
        """Wait until `count` calls of method (to chat, with status) were made after `since`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    c
                    for c in self.calls[since:]
                    if c.method == method
                    and (chat_id is None or c.chat_id == chat_id)
                    and (status is None or c.status == status)
                ]
                if (until(found) if until else len(found) >= count) and found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method} to {chat_id}: {len(found)} calls after {timeout:.0f} s")
                self._lock.wait(min(left, 0.2))

    def quiet(self, chat_id: int, seconds: float = 1.5, since: int = 0) -> bool:
        """True if nothing was sent to the chat during `seconds`."""
        time.sleep(seconds)
        return not self.calls_of("sendMessage", chat_id, since)

    # --- the Bot API ------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await _params(request)
        with self._lock:
            call = Call(method, params)
            self.calls.append(call)
            scripted = self.failures.get(method)
            failure = scripted.pop(0) if scripted else None
            if failure is None and method == "sendMessage" and self._over_rate(call.at):
                wait = self.rate_retry_after
                failure = (
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "parameters": {"retry_after": wait},
                        "description": f"Too Many Requests: retry after {wait}",
                    },
                )
            self._lock.notify_all()
        if failure is not None:
            call.status = failure[0]
            return JSONResponse(failure[1], status_code=failure[0])
        if method == "getUpdates":
            return self._ok(await self._get_updates(params))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            return self._error(404, "Not Found")
        status, result = handler(params)
        with self._lock:
            call.status = status
            self._lock.notify_all()
        if status != 200:
            return self._error(status, str(result))
        return self._ok(result)

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str) -> JSONResponse:
        return JSONResponse(
            {"ok": False, "error_code": status, "description": description}, status_code=status
        )

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(timeout, 30)
        while True:
            with self._lock:
                if offset:
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                pending = self.updates[:limit]
            if pending or self._closing or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.05)

    def _m_getMe(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self.bot_user

    def _m_sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return 403, "Forbidden: bot was blocked by the user"
        text = str(params.get("text", ""))
        if not text.strip():
            return 400, "Bad Request: message text is empty"
        if utf16_len(text) > 4096:
            return 400, "Bad Request: message is too long"
        markup = params.get("reply_markup")
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= 64:
                    return 400, "Bad Request: BUTTON_DATA_INVALID"
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.bot_user,
            "text": text,
        }
        if markup and "inline_keyboard" in markup:  # like Telegram: reply keyboards are not echoed
            message["reply_markup"] = markup
        self.sent[message["message_id"]] = message
        return 200, message

    def _m_sendPhoto(self, params: dict[str, Any]) -> tuple[int, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return 403, "Forbidden: bot was blocked by the user"
        caption = str(params.get("caption") or "")
        if utf16_len(caption) > MAX_CAPTION:
            return 400, "Bad Request: message caption is too long"
        photo = params.get("photo")
        if isinstance(photo, Upload):
            if not photo.data:
                return 400, "Bad Request: file must be non-empty"
            sizes = self.add_file(photo.data)
            with self._lock:
                self.uploads += 1
        elif isinstance(photo, str) and photo in self.files:
            data = self.files[photo]
            sizes = [{"file_id": photo, "file_unique_id": photo[-12:], "width": 800, "height": 600,
                      "file_size": len(data)}]  # fmt: skip
        else:
            return 400, "Bad Request: wrong file identifier/HTTP URL specified"
        markup = params.get("reply_markup")
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.bot_user,
            "photo": sizes,
        }
        if caption:
            message["caption"] = caption
        if markup:
            message["reply_markup"] = markup
        self.sent[message["message_id"]] = message
        return 200, message

    def _m_getFile(self, params: dict[str, Any]) -> tuple[int, Any]:
        file_id = str(params.get("file_id") or "")
        data = self.files.get(file_id)
        if data is None:
            return 400, "Bad Request: invalid file_id"
        return 200, {
            "file_id": file_id,
            "file_unique_id": file_id[-12:],
            "file_size": len(data),
            "file_path": f"photos/{file_id}.jpg",
        }

    async def _file(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return Response(status_code=401)
        path = str(request.path_params["path"])
        file_id = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        data = self.files.get(file_id)
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="application/octet-stream")

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> tuple[int, Any]:
        message = self.sent.get(int(params.get("message_id") or 0))
        if message is None:
            return 400, "Bad Request: message to edit not found"
        message = {**message, "reply_markup": params.get("reply_markup") or {"inline_keyboard": []}}
        self.sent[message["message_id"]] = message
        return 200, message

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _m_sendChatAction(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _m_setMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _m_deleteMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _m_setWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _m_close(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True


async def _params(request: Request) -> dict[str, Any]:
    """PTB posts form fields (JSON-encoded values for objects); plain JSON is accepted too."""
    kind = request.headers.get("content-type", "")
    raw: dict[str, Any]
    if "application/json" in kind:
        body = await request.body()
        raw = json.loads(body) if body else {}
    elif "multipart/form-data" in kind:
        form = await request.form()
        raw = {}
        for key, value in form.items():
            if isinstance(value, str):
                raw[key] = value
            elif isinstance(value, UploadFile):
                raw[key] = Upload(value.filename or "", await value.read())
    else:
        raw = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        raw.update(request.query_params)
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in JSON_FIELDS and isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        params[key] = value
    return params
