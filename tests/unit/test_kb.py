import shutil
from pathlib import Path

import pytest
import yaml

from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.knowledge.answers import procedure_answer
from bot.knowledge.catalog import Catalog
from bot.knowledge.kb import MAX_ANSWER, KnowledgeBase, KnowledgeBaseError

FAQ = PROJECT_ROOT / "faq"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase(FAQ)


@pytest.fixture(scope="module")
def ward():
    return load_ward(PROJECT_ROOT / "settings" / "ward.yml")


def test_topic_catalog_is_the_shared_contract() -> None:
    shared = PROJECT_ROOT.parent / "shared" / "topics.yml"
    if not shared.exists():
        pytest.skip("shared/ is not beside this checkout")
    assert (FAQ / "topics.yml").read_text(encoding="utf-8") == shared.read_text(encoding="utf-8")


def test_every_catalog_procedure_has_a_valid_file(kb: KnowledgeBase) -> None:
    assert set(kb.procedures) == set(kb.catalog.procedures)
    for procedure in kb.procedures.values():
        assert procedure.sources and procedure.checked and procedure.legal_basis
        assert procedure.summary.strip()
        assert all(text.strip() for text in procedure.aspects.values())
        assert all(len(text) <= MAX_ANSWER for text in [procedure.summary, *procedure.aspects.values()])


def test_guides_are_referenced_correctly(kb: KnowledgeBase) -> None:
    for procedure in kb.procedures.values():
        if procedure.guide:
            assert procedure.guide in kb.guides
    for guide in kb.guides.values():
        assert guide.topic in kb.catalog.procedures
        assert len(guide.steps) >= 2


def test_answer_fills_ward_details_and_shows_date_and_where_to_verify(kb, ward) -> None:
    reply = procedure_answer(kb, ward, "mot_cua", None)
    assert ward.phone in reply.text or ward.address in reply.text
    assert "{" not in reply.text
    reply = procedure_answer(kb, ward, "khai_sinh", "ho_so")
    assert kb.procedures["khai_sinh"].aspects["ho_so"][:40] in reply.text
    assert "kiểm tra ngày" in reply.text and "Xem lại tại" in reply.text
    payloads = [b["payload"] for b in reply.buttons]
    assert '/khai_sinh{"aspect": "ho_so"}' not in payloads
    assert any(p.startswith('/khai_sinh{"aspect"') for p in payloads)
    assert '/book_appointment{"procedure": "khai_sinh"}' in payloads


def test_unknown_aspect_falls_back_to_the_summary(kb, ward) -> None:
    procedure = next(p for p in kb.procedures.values() if "thoi_han" not in p.aspects)
    reply = procedure_answer(kb, ward, procedure.id, "thoi_han")
    assert procedure.summary[:30] in reply.text


def copy_faq(tmp_path: Path) -> Path:
    root = tmp_path / "faq"
    shutil.copytree(FAQ, root)
    return root


def test_editing_a_fee_needs_no_code_change(tmp_path: Path, ward) -> None:
    root = copy_faq(tmp_path)
    path = root / "procedures" / "khai_sinh.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["aspects"]["le_phi"] = "Lệ phí mới: 12.345 đồng (ví dụ thử nghiệm)."
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    reply = procedure_answer(KnowledgeBase(root), ward, "khai_sinh", "le_phi")
    assert "12.345 đồng" in reply.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["aspects"].update(le_phi=""), "empty text"),
        (lambda d: d["aspects"].update(le_phi="x" * 701), "at most 700"),
        (lambda d: d.update(summary="Gọi {ward_fax}"), "unknown placeholder"),
        (lambda d: d.pop("sources"), "sources"),
        (lambda d: d.pop("checked"), "checked"),
        (lambda d: d["aspects"].update(gia_ca="x"), "unknown aspect"),
        (lambda d: d.update(guide="no_such_guide"), "does not exist"),
    ],
)
def test_invalid_files_are_refused_with_file_and_field(tmp_path: Path, change, message: str) -> None:
    root = copy_faq(tmp_path)
    path = root / "procedures" / "khai_sinh.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=message) as error:
        KnowledgeBase(root)
    assert "khai_sinh" in str(error.value)


def test_a_missing_procedure_file_is_reported(tmp_path: Path) -> None:
    root = copy_faq(tmp_path)
    (root / "procedures" / "tam_vang.yml").unlink()
    with pytest.raises(KnowledgeBaseError, match="no file for tam_vang"):
        KnowledgeBase(root)


@pytest.mark.parametrize(
    ("intent", "aspects", "topic"),
    [
        ("khai_sinh", ["ho_so"], "khai_sinh.ho_so"),
        ("khai_sinh", ["ho_so", "noi_lam"], "khai_sinh"),
        ("khai_sinh", ["ho_so", "ho_so"], "khai_sinh.ho_so"),
        ("khai_sinh", [], "khai_sinh"),
        ("vneid_kich_hoat_muc2", ["cac_buoc"], "vneid.kich_hoat_muc2"),
        ("can_cuoc_gia_tri_cccd", ["thoi_han"], "can_cuoc.gia_tri_cccd"),
        ("mot_cua", ["noi_lam"], "mot_cua"),
        ("can_cuoc_cap_doi", ["le_phi"], "can_cuoc.cap_doi.le_phi"),
        ("book_appointment", ["ho_so"], "appointment.book"),
        ("delete_my_data", [], "privacy.delete"),
        ("affirm", [], None),
    ],
)
def test_topic_follows_the_labelling_rules(intent: str, aspects: list[str], topic: str | None) -> None:
    catalog = Catalog.load(FAQ / "topics.yml")
    assert catalog.topic(intent, aspects) == topic
    if topic:
        assert topic in catalog.all_ids


def test_edits_to_faq_are_picked_up_without_restart(tmp_path: Path, ward) -> None:
    root = copy_faq(tmp_path)
    kb = KnowledgeBase(root)
    path = root / "procedures" / "khai_sinh.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["aspects"]["le_phi"] = "Lệ phí đã sửa: 54.321 đồng (thử nghiệm)."
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert kb.refresh_if_changed(every=0)
    assert "54.321 đồng" in procedure_answer(kb, ward, "khai_sinh", "le_phi").text
    data["aspects"]["le_phi"] = ""  # a broken edit is refused; the last good content stays
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert not kb.refresh_if_changed(every=0)
    assert "54.321 đồng" in procedure_answer(kb, ward, "khai_sinh", "le_phi").text
