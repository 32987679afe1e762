"""HTTP client for the Rasa server (REST channel and status)."""

from __future__ import annotations

from typing import Any

import httpx


class RasaUnavailable(Exception):
    """Rasa did not answer in time or answered with an error."""


class RasaClient:
    """Talks to `rasa run --enable-api` over one pooled HTTP connection set."""

    def __init__(self, base_url: str, timeout: float, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=2.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One turn through Rasa's REST channel; returns the bot's messages."""
        body = {"sender": sender, "message": message, "metadata": metadata or {}}
        try:
            response = await self._http.post("/webhooks/rest/webhook", json=body)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"{type(exc).__name__}") from exc
        if response.status_code != 200:
            raise RasaUnavailable(f"HTTP {response.status_code}")
        data = response.json()
        if not isinstance(data, list):
            raise RasaUnavailable("unexpected response shape")
        return data

    async def parse(self, text: str) -> dict[str, Any]:
        """NLU only (used by the evaluation and benchmarks)."""
        response = await self._http.post("/model/parse", params=self._auth(), json={"text": text})
        response.raise_for_status()
        return response.json()

    async def ready(self) -> bool:
        """True when the server answers and has a model loaded."""
        try:
            response = await self._http.get("/status", params=self._auth(), timeout=2.0)
            return response.status_code == 200 and bool(response.json().get("model_file"))
        except (httpx.HTTPError, ValueError):
            return False

    def _auth(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    async def aclose(self) -> None:
        await self._http.aclose()
