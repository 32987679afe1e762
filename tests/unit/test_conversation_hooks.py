"""Button payloads reach the registered hooks (campaign press counting) and never break a turn."""

from __future__ import annotations

from types import SimpleNamespace

from bot.conversation.service import ConversationService


class StubRasa:
    """Rasa is not what this test is about: it answers with one meta message."""

    async def send(self, sender, message, metadata=None):
        return [{"custom": {"meta": {"topic": "help", "intent": {"name": "help", "confidence": 1.0}}}}]


async def test_payloads_go_to_hooks_and_typed_text_does_not() -> None:
    calls = []
    service = ConversationService(SimpleNamespace(db="db"), StubRasa(), frozenset({"help"}))
    service.payload_hooks.append(
        lambda db, channel, external, payload: calls.append((channel, external, payload))
    )
    await service.handle("telegram:42", "/help")
    await service.handle("telegram:42", "xin chào")
    assert calls == [("telegram", "42", "/help")]


async def test_a_failing_hook_does_not_break_the_turn() -> None:
    def broken(*_args):
        raise RuntimeError("database is gone")

    service = ConversationService(SimpleNamespace(db="db"), StubRasa(), frozenset({"help"}))
    service.payload_hooks.append(broken)
    turn = await service.handle("web:1", "/help")
    assert turn.topic == "help"
