import pytest

from bot.conversation.service import to_turn
from bot.conversation.text import MAX_TEXT, BadInput, check_payload, clean_text

INTENTS = frozenset({"greet", "khai_sinh", "book_appointment"})


def test_clean_text_normalises_to_nfc_and_trims() -> None:
    assert clean_text("  ca\u0306n cu\u031bo\u031b\u0301c  ") == "căn cước"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_TEXT + 1), "longer than"),
        ("abc\x00def", "control characters"),
        ("///", "empty"),
    ],
)
def test_clean_text_refuses(text: str, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        clean_text(text)


def test_typed_text_cannot_smuggle_an_intent_payload() -> None:
    assert clean_text('/book_appointment{"procedure": "khai_sinh"}').startswith("book_appointment")


def test_payloads_must_name_a_domain_intent() -> None:
    assert check_payload("/greet", INTENTS) == "/greet"
    assert check_payload('/khai_sinh{"aspect": "ho_so"}', INTENTS)
    for bad in (
        "/drop_tables",
        "greet",
        '/khai_sinh{"aspect": ',
        '/khai_sinh["x"]',
        '/khai_sinh{"a": {"b": 1}}',
    ):
        with pytest.raises(BadInput):
            check_payload(bad, INTENTS)


def test_meta_message_becomes_topic_and_intent() -> None:
    raw = [
        {"recipient_id": "web:1", "text": "Xin chào", "buttons": [{"title": "Menu", "payload": "/help"}]},
        {
            "recipient_id": "web:1",
            "custom": {"meta": {"topic": "greet", "intent": {"name": "greet", "confidence": 0.9}}},
        },
    ]
    turn = to_turn(raw)
    assert turn.topic == "greet"
    assert turn.intent == {"name": "greet", "confidence": 0.9}
    assert turn.messages == [{"text": "Xin chào", "buttons": [{"title": "Menu", "payload": "/help"}]}]
