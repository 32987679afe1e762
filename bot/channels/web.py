"""The web chat channel: the page a citizen opens and the JSON chat API behind it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from bot.campaigns import photos
from bot.channels import web_inbox
from bot.conversation.text import BadInput
from bot.storage.citizens import touch_citizen

PAGE = Path(__file__).resolve().parents[1] / "web" / "templates" / "chat.html"
USER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_BODY = 64 * 1024


class ChatRequest(BaseModel):
    """The chat API's request body (DESIGN.md, "Chat API")."""

    model_config = ConfigDict(extra="forbid")
    user: StrictStr = Field(min_length=1, max_length=64, pattern=USER_ID.pattern)
    text: StrictStr | None = None
    payload: StrictStr | None = Field(None, max_length=1024)
    metadata: dict[str, StrictStr] | None = None


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def web_router() -> APIRouter:
    router = APIRouter()
    page = PAGE.read_text(encoding="utf-8")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/media/{name}", include_in_schema=False)
    async def media(request: Request, name: str) -> Response:
        """A campaign photo (<var dir>/uploads, content-addressed names only): what a message's
        "photo" is shown with in a page (same origin, so a CSP with img-src 'self' allows it)."""
        path = photos.path_of(request.app.state.services.settings.var_dir, name)
        if path is None:
            return Response(status_code=404)
        headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        return FileResponse(path, media_type=photos.media_type(name), headers=headers)

    @router.post("/api/chat")
    async def chat(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return error(413, "too_large", f"request body over {MAX_BODY} bytes")
        try:
            data: Any = ChatRequest.model_validate_json(body)
        except ValidationError as exc:
            return error(*_describe(exc))
        if (data.text is None) == (data.payload is None):
            return error(422, "invalid_request", "give exactly one of 'text' or 'payload'")
        conversation = request.app.state.conversation
        try:
            message = conversation.prepare(data.text, data.payload)
        except BadInput as exc:
            status = 413 if "longer than" in str(exc) else 422
            return error(status, "invalid_message", str(exc))
        sender = f"web:{data.user}"
        await asyncio.to_thread(touch_citizen, request.app.state.services.db, "web", data.user)
        turn = await conversation.handle(sender, message, {"channel": "web"})
        return JSONResponse(turn.as_dict(), status_code=503 if turn.error else 200)

    @router.get("/api/chat/inbox")
    async def inbox(request: Request, user: str = "") -> JSONResponse:
        """Reminders and notices sent while the page was closed, each handed out once."""
        if not USER_ID.fullmatch(user):
            return error(422, "invalid_request", "user: 1-64 characters A-Z a-z 0-9 _ . -")
        messages = await asyncio.to_thread(web_inbox.take, request.app.state.services.db, user)
        return JSONResponse({"messages": messages}, headers={"Cache-Control": "no-store"})

    return router


def _describe(exc: ValidationError) -> tuple[int, str, str]:
    """A 4xx naming the problem: malformed JSON or the first bad field."""
    first = exc.errors()[0]
    if first["type"] in {"json_invalid", "json_type"}:
        return 400, "malformed_json", "request body is not valid JSON"
    field = ".".join(str(p) for p in first["loc"]) or "body"
    return 422, "invalid_request", f"{field}: {first['msg']}"
