"""nlu.phrases: the annotated procedure and step phrases tagged in messages (PhraseEntityExtractor)."""

import json
import re

import pytest
import yaml

from bot.config.settings import PROJECT_ROOT
from nlu.phrases import PhraseTagger

ANNOTATION = re.compile(r"\[([^\]]+)\](\{[^}]*\})")


def annotated(line: str) -> list[tuple[str, str, int, int, str]]:
    """Rasa's `[span]{"entity": ..., "value": ...}` markup as (entity, text, start, end, value)."""
    text, spans, position = "", [], 0
    for match in ANNOTATION.finditer(line):
        text += line[position : match.start()]
        attributes = json.loads(match.group(2))
        spans.append((attributes["entity"], len(text), len(text) + len(match.group(1)), attributes["value"]))
        text += match.group(1)
        position = match.end()
    text += line[position:]
    return [(entity, text, start, end, str(value)) for entity, start, end, value in spans]


EXAMPLES = [
    'đặt lịch làm [căn cước]{"entity": "procedure", "value": "can_cuoc.cap_moi"} sáng thứ 5',
    'hẹn [đổi căn cước]{"entity": "procedure", "value": "can_cuoc.cap_doi"}',
    'đặt lịch [khai sinh]{"entity": "procedure", "value": "khai_sinh"} cho con',
    'sang bước [5]{"entity": "step", "value": "5"}',
    'buoc [3]{"entity": "step", "value": "3"}',
    'bước [năm]{"entity": "step", "value": "5"}',
    'bước thứ [7]{"entity": "step", "value": "7"}',
]


@pytest.fixture(scope="module")
def tagger() -> PhraseTagger:
    examples = [span for line in EXAMPLES for span in annotated(line)]
    return PhraseTagger.fit(examples, contextual=["step"], numbers=["step"])


def tags(tagger: PhraseTagger, text: str) -> list[tuple[str, str, str]]:
    return [(e["entity"], e["value"], text[e["start"] : e["end"]]) for e in tagger.tag(text)]


@pytest.mark.parametrize(
    "text",
    ["đặt lịch làm căn cước sáng thứ 5", "dat lich lam can cuoc sang thu 5", "ĐẶT LỊCH LÀM CĂN CƯỚC"],
)
def test_procedure_tagged_with_and_without_diacritics(tagger: PhraseTagger, text: str) -> None:
    assert tags(tagger, text) == [("procedure", "can_cuoc.cap_moi", text[13:21])]


def test_offsets_point_into_the_original_text(tagger: PhraseTagger) -> None:
    text = "Cho tôi hẹn,  khai sinh!"
    [entity] = tagger.tag(text)
    assert (entity["start"], entity["end"]) == (14, 23)
    assert text[entity["start"] : entity["end"]] == "khai sinh"


def test_teencode_is_expanded_before_matching(tagger: PhraseTagger) -> None:
    # teencode.yml: cccd → căn cước công dân; a match covers whole tokens, so "căn cước" alone is not it
    assert tags(tagger, "đặt lịch làm cccd") == []
    line = 'hẹn làm [cccd]{"entity": "procedure", "value": "can_cuoc.cap_moi"}'
    learned = PhraseTagger.fit(annotated(line))
    assert tags(learned, "hen lam can cuoc cong dan") == [
        ("procedure", "can_cuoc.cap_moi", "can cuoc cong dan")
    ]
    assert tags(learned, "lam CCCD") == [("procedure", "can_cuoc.cap_moi", "CCCD")]


def test_longest_match_wins(tagger: PhraseTagger) -> None:
    assert tags(tagger, "cho tôi hẹn đổi căn cước") == [("procedure", "can_cuoc.cap_doi", "đổi căn cước")]
    assert tags(tagger, "doi can cuoc") == [("procedure", "can_cuoc.cap_doi", "doi can cuoc")]


def test_only_whole_words_match(tagger: PhraseTagger) -> None:
    assert tags(tagger, "khai sinhh") == []
    assert tags(tagger, "akhai sinh") == []


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [("bước 3", "3", "3"), ("buoc 9", "9", "9"), ("cho xem bước năm", "5", "năm"), ("bước thứ 4", "4", "4")],
)
def test_step_tagged_after_its_cue_word(tagger: PhraseTagger, text: str, value: str, span: str) -> None:
    assert tags(tagger, text) == [("step", value, span)]


def test_a_number_without_the_cue_is_no_step(tagger: PhraseTagger) -> None:
    assert tags(tagger, "sáng thứ 5") == []
    assert tagger.contexts == {"step": ["buoc"]}


def test_nothing_tagged_in_a_plain_question(tagger: PhraseTagger) -> None:
    assert tagger.tag("cho tôi hỏi giờ làm việc của phường") == []
    assert tagger.tag("") == []


def test_round_trip_through_a_dict(tagger: PhraseTagger) -> None:
    again = PhraseTagger.from_dict(json.loads(json.dumps(tagger.to_dict())))
    assert again.tag("đặt lịch làm căn cước, bước 3") == tagger.tag("đặt lịch làm căn cước, bước 3")


@pytest.fixture(scope="module")
def trained() -> PhraseTagger:
    """Fitted like PhraseEntityExtractor.train, on the annotations of nlu/data/nlu/."""
    examples = []
    for path in sorted((PROJECT_ROOT / "nlu" / "data" / "nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            for line in item.get("examples", "").splitlines():
                if line.startswith("- "):
                    examples += [s for s in annotated(line[2:].strip()) if s[0] in ("procedure", "step")]
    return PhraseTagger.fit(examples, contextual=["step"], numbers=["step"])


@pytest.mark.parametrize(
    ("text", "procedure"),
    [
        ("đặt lịch làm căn cước sáng thứ 5", "can_cuoc.cap_moi"),
        ("dat lich lam can cuoc sang thu 5", "can_cuoc.cap_moi"),
        ("cho tôi hẹn làm khai sinh", "khai_sinh"),
        ("cho toi hen lam khai sinh", "khai_sinh"),
        ("đặt lịch đổi căn cước", "can_cuoc.cap_doi"),  # the longest phrase wins
        ("hen lam giay khai tu cho ong", "khai_tu"),
        ("đặt lịch hẹn", None),
        ("Nguyễn Văn An", None),
    ],
)
def test_the_training_data_teaches_the_procedure_named_in_a_request(
    trained: PhraseTagger, text: str, procedure: str | None
) -> None:
    found = [e["value"] for e in trained.tag(text) if e["entity"] == "procedure"]
    assert found == ([procedure] if procedure else [])
    assert not [e for e in trained.tag(text) if e["entity"] == "step"]  # "thứ 5" is a day, not a step


def test_the_training_data_teaches_the_step_cue(trained: PhraseTagger) -> None:
    assert trained.contexts == {"step": ["buoc"]}
    assert tags(trained, "cho tôi xem bước 6") == [("step", "6", "6")]
    assert tags(trained, "bước năm") == [("step", "5", "năm")]
