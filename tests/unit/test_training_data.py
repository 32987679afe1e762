"""The training data and the domain agree with the catalog; the held-out set stays held out."""

import re

import pytest
import yaml

from bot.config.settings import PROJECT_ROOT
from bot.knowledge.catalog import DIALOGUE_INTENTS, Catalog
from nlu.normalize import normalize_text

DATA = PROJECT_ROOT / "nlu" / "data"
HELDOUT = PROJECT_ROOT / "tests" / "data" / "heldout.yml"
ANNOTATION = re.compile(r"\[([^\]]+)\]\{[^}]*\}")


def training_examples() -> dict[str, list[str]]:
    examples: dict[str, list[str]] = {}
    for path in sorted((DATA / "nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in item:
                lines = [line[2:].strip() for line in item["examples"].splitlines() if line.startswith("- ")]
                examples.setdefault(item["intent"], []).extend(ANNOTATION.sub(r"\1", x) for x in lines)
    return examples


def domain_intents() -> list[str]:
    return yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"]


def test_domain_has_an_intent_for_every_catalog_topic() -> None:
    catalog = Catalog.load(PROJECT_ROOT / "faq" / "topics.yml")
    intents = set(domain_intents())
    assert set(catalog.intent_to_procedure) <= intents
    assert set(DIALOGUE_INTENTS) <= intents
    assert {catalog.topic(i) for i in DIALOGUE_INTENTS} == set(catalog.dialogue)


def test_every_domain_intent_has_training_examples() -> None:
    examples = training_examples()
    thin = {
        intent: len(examples.get(intent, []))
        for intent in domain_intents()
        if len(examples.get(intent, [])) < 15
    }
    assert not thin, f"intents with fewer than 15 examples: {thin}"


def test_aspect_and_procedure_annotations_use_catalog_values() -> None:
    catalog = Catalog.load(PROJECT_ROOT / "faq" / "topics.yml")
    allowed = {"aspect": set(catalog.aspects), "procedure": set(catalog.procedures)}
    for path in sorted((DATA / "nlu").glob("*.yml")):
        for match in re.finditer(r"\]\{(.*?)\}", path.read_text(encoding="utf-8")):
            annotation = yaml.safe_load("{" + match.group(1) + "}")
            if annotation["entity"] in allowed:
                assert annotation["value"] in allowed[annotation["entity"]], (path.name, annotation)


def test_heldout_messages_are_not_in_the_training_data() -> None:
    if not HELDOUT.exists():
        pytest.skip("no held-out set")
    trained = {normalize_text(x) for xs in training_examples().values() for x in xs}
    heldout = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    leaked = [item["text"] for item in heldout if normalize_text(item["text"]) in trained]
    assert not leaked, f"{len(leaked)} held-out messages are in the training data: {leaked[:5]}"
