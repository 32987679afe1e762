"""Rasa's action endpoint, served by the app itself with rasa-sdk's executor.

Only Rasa may call it: the request must carry the token that the runner gave
both processes (endpoints.yml's action_endpoint token).
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import (
    ActionExecutionRejection,
    ActionMissingDomainException,
    ActionNotFoundException,
)

log = logging.getLogger(__name__)


def build_executor() -> ActionExecutor:
    executor = ActionExecutor()
    executor.register_package("actions")
    return executor


def action_router(executor: ActionExecutor, token: str) -> APIRouter:
    router = APIRouter()

    @router.post("/webhook", include_in_schema=False)
    async def webhook(request: Request) -> JSONResponse:
        given = request.query_params.get("token", "")
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        try:
            action_call = await request.json()
        except ValueError:
            return JSONResponse({"error": "Invalid body request"}, status_code=400)
        try:
            result = await executor.run(action_call)
        except ActionExecutionRejection as exc:
            return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=400)
        except ActionNotFoundException as exc:
            log.error("unknown action requested: %s", exc.action_name)
            return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=404)
        except ActionMissingDomainException as exc:
            return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=449)
        return JSONResponse(result.model_dump() if result else None)

    return router
