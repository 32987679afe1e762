"""Campaigns: scope enforcement, audience filters, preview, reports and per-block progress."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.campaigns import delivery, service
from bot.campaigns.errors import CampaignError, Forbidden
from bot.outbox.service import counts
from bot.staff import accounts
from bot.storage.db import Database
from bot.subscriptions import service as subscriptions
from tests.support.campaigns import DAY, WARD_BLOCKS, _campaigns_template, _db, citizens, staff  # noqa: F401 - fixtures

TEXT = "Phường nhắc: bà con chưa kích hoạt VNeID mức 2 vui lòng làm trước 31/12."


def make(db: Database, actor, blocks, **extra):
    return service.create(
        db, actor, title="Nhắc VNeID", text=TEXT, blocks=blocks, ward_blocks=WARD_BLOCKS, **extra
    )


# --- scope -------------------------------------------------------------------------------------


def test_cadre_creates_for_own_blocks_only(db: Database) -> None:
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1", "khoi_2"])
    info = make(db, cadre, ["khoi_1", "khoi_2"])
    assert info.status == "draft" and info.created_by == cadre.id and info.blocks == ["khoi_1", "khoi_2"]
    with pytest.raises(Forbidden) as refused:
        make(db, cadre, ["khoi_1", "khoi_3"])
    assert refused.value.code == "outside_blocks" and refused.value.detail == "khoi_3"


def test_admin_targets_the_whole_ward_and_officers_cannot_create(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    officer = staff(db, "mot_cua", "officer")
    assert make(db, admin, WARD_BLOCKS).blocks == WARD_BLOCKS
    with pytest.raises(Forbidden) as refused:
        make(db, officer, ["khoi_1"])
    assert refused.value.code == "role_not_allowed"


@pytest.mark.parametrize("action", ["get", "preview", "confirm", "pause", "resume", "cancel", "report"])
def test_every_action_is_refused_outside_the_cadres_blocks(db: Database, action: str) -> None:
    admin = staff(db, "quan_tri", "admin")
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
    officer = staff(db, "mot_cua", "officer")
    other = make(db, admin, ["khoi_1", "khoi_2"])  # reaches a block the cadre does not have
    for who in (cadre, officer):
        with pytest.raises(Forbidden):
            getattr(service, action)(db, who, other.id)
    own = make(db, admin, ["khoi_1"])
    service.confirm(db, cadre, own.id) if action != "confirm" else None
    if action in ("resume",):
        service.pause(db, cadre, own.id)
    getattr(service, action)(db, cadre, own.id)  # allowed within the cadre's blocks


def test_scope_is_read_again_on_each_action(db: Database) -> None:
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
    info = make(db, cadre, ["khoi_1"])
    accounts.update_user(db, "can_bo_1", blocks=["khoi_2"], known_blocks=set(WARD_BLOCKS))
    with pytest.raises(Forbidden):
        service.confirm(db, cadre, info.id)
    accounts.update_user(db, "can_bo_1", blocks=["khoi_1"], active=False, known_blocks=set(WARD_BLOCKS))
    with pytest.raises(Forbidden) as refused:
        service.preview(db, cadre, info.id)
    assert refused.value.code == "inactive_account"


def test_bad_input_is_refused_with_a_code(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    cases = [
        ({"blocks": ["khoi_9"]}, "unknown_block"),
        ({"blocks": ["khoi_1"], "text": "x" * 4097}, "invalid_text"),
        ({"blocks": ["khoi_1"], "channels": ["sms"]}, "invalid_channels"),
        ({"blocks": ["khoi_1"], "tag_filter": "not vneid muc2"}, "invalid_tag_filter"),
        ({"blocks": ["khoi_1"], "schedule": "weekly", "run_at": DAY}, "invalid_schedule"),
        ({"blocks": ["khoi_1"], "buttons": [{"title": "Xem", "payload": "javascript:x"}]}, "invalid_button"),
    ]
    for extra, code in cases:
        args = {"title": "T", "text": TEXT, "ward_blocks": WARD_BLOCKS, **extra}
        with pytest.raises(CampaignError) as refused:
            service.create(db, admin, **args)
        assert refused.value.code == code
    assert make(db, admin, ["khoi_1"], **{}).text == TEXT
    service.create(db, admin, title="T", text="y" * 4096, blocks=["khoi_1"], ward_blocks=WARD_BLOCKS)


def test_confirm_only_a_draft(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    info = make(db, admin, ["khoi_1"])
    assert service.confirm(db, admin, info.id).status == "scheduled"
    with pytest.raises(CampaignError) as refused:
        service.confirm(db, admin, info.id)
    assert refused.value.code == "not_a_draft"


# --- audience and preview --------------------------------------------------------------------


def test_audience_filters_blocks_channels_tags_and_unsubscribed(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    done = citizens(db, "khoi_1", 3, tags=["vneid_muc2"])
    todo = citizens(db, "khoi_1", 4, start=10)
    citizens(db, "khoi_2", 5)  # another block
    citizens(db, "khoi_1", 2, channel="zalo", start=20)
    subscriptions.unsubscribe(db, "telegram", todo[0], "user asked")

    def count(**extra: object) -> int:
        return service.preview(db, admin, make(db, admin, ["khoi_1"], **extra).id).recipients

    assert count() == 3 + 3
    assert count(tag_filter="vneid_muc2") == 3
    assert count(tag_filter="not vneid_muc2") == 3
    assert count(channels=["telegram", "zalo"]) == 8
    assert count(channels=["zalo"], tag_filter="not vneid_muc2") == 2
    everyone = make(db, admin, ["khoi_1", "khoi_2"], tag_filter="not vneid_muc2")
    assert service.preview(db, admin, everyone.id).recipients == 3 + 5
    reached = delivery.audience.recipients(db, ["khoi_1"], ["telegram"], "not vneid_muc2")
    assert set(done).isdisjoint(e for _c, e in reached)


def test_preview_renders_the_message_with_buttons(db: Database) -> None:
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
    citizens(db, "khoi_1", 2)
    buttons = [
        service.guide_button("Hướng dẫn kích hoạt", "vneid.kich_hoat_muc2"),
        service.booking_button("Đặt lịch hẹn"),
        service.link_button("Cổng dịch vụ công", "https://dichvucong.gov.vn"),
    ]
    info = make(db, cadre, ["khoi_1"], buttons=buttons)
    shown = service.preview(db, cadre, info.id)
    assert shown.recipients == 2
    assert shown.message == {
        "text": TEXT,
        "buttons": [
            {"title": "Hướng dẫn kích hoạt", "payload": '/start_guide{"procedure": "vneid.kich_hoat_muc2"}'},
            {"title": "Đặt lịch hẹn", "payload": "/book_appointment"},
            {"title": "Cổng dịch vụ công", "payload": "https://dichvucong.gov.vn"},
        ],
    }
    assert counts(db, "campaign")["queued"] == 0  # a preview sends nothing


# --- reports ----------------------------------------------------------------------------------


def test_report_counts_and_button_presses(db: Database) -> None:
    from bot.outbox.models import OutboxMessage

    admin = staff(db, "quan_tri", "admin")
    ids = citizens(db, "khoi_1", 6)
    button = service.booking_button("Đặt lịch hẹn")
    info = make(db, admin, ["khoi_1"], buttons=[button])
    service.confirm(db, admin, info.id)
    assert delivery.run_campaign(db, info.id, DAY) == 6
    outcome = {ids[0]: "sent", ids[1]: "sent", ids[2]: "failed", ids[3]: "blocked", ids[4]: "skipped"}
    with db.session() as session:
        for row in session.query(OutboxMessage).filter_by(kind="campaign"):
            if row.external_id in outcome:
                row.status = outcome[row.external_id]
                row.sent_at = DAY if row.status == "sent" else None
    assert delivery.record_press(db, "telegram", ids[0], "/book_appointment", DAY) == info.id
    assert delivery.record_press(db, "telegram", ids[0], "/book_appointment", DAY) == info.id  # once
    assert delivery.record_press(db, "telegram", ids[1], "/other", DAY) is None  # not its button
    assert delivery.record_press(db, "telegram", ids[2], "/book_appointment", DAY) is None  # not sent
    report = service.report(db, admin, info.id)
    assert report == {
        "campaign_id": info.id,
        "status": "running",
        "runs": 1,
        "recipients": 6,
        "sent": 2,
        "failed": 1,
        "blocked": 1,
        "skipped": 1,
        "cancelled": 0,
        "queued": 1,
        "held": 0,
        "presses": 1,
    }


def test_block_progress_share_of_vneid_level_2(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    cadre = staff(db, "can_bo_2", "cadre", ["khoi_2"])
    officer = staff(db, "mot_cua", "officer")
    citizens(db, "khoi_1", 3, tags=["vneid_muc2"])
    citizens(db, "khoi_1", 1, start=10)
    citizens(db, "khoi_2", 1, tags=["vneid_muc2"])
    gone = citizens(db, "khoi_2", 3, start=10)
    subscriptions.unsubscribe(db, "telegram", gone[0], "user asked")  # not counted any more
    whole = {row["block"]: row for row in service.progress(db, admin, WARD_BLOCKS)}
    assert whole["khoi_1"] == {"block": "khoi_1", "subscribed": 4, "tagged": 3, "share": 0.75}
    assert whole["khoi_2"]["subscribed"] == 3 and whole["khoi_2"]["tagged"] == 1
    assert whole["khoi_5"] == {"block": "khoi_5", "subscribed": 0, "tagged": 0, "share": 0.0}
    assert [row["block"] for row in service.progress(db, cadre, WARD_BLOCKS)] == ["khoi_2"]
    assert len(service.progress(db, officer, WARD_BLOCKS)) == 5


def test_list_campaigns_shows_a_cadre_only_theirs(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
    mine = make(db, admin, ["khoi_1"])
    make(db, admin, ["khoi_1", "khoi_2"])
    assert [c.id for c in service.list_campaigns(db, cadre)] == [mine.id]
    assert len(service.list_campaigns(db, admin)) == 2
    with pytest.raises(Forbidden):
        service.list_campaigns(db, staff(db, "mot_cua", "officer"))


def test_created_at_is_aware_utc(db: Database) -> None:
    info = make(db, staff(db, "quan_tri", "admin"), ["khoi_1"])
    assert info.created_at.tzinfo == dt.UTC


def test_every_refusal_code_has_a_vietnamese_text() -> None:
    import re

    import yaml

    from bot.config.settings import PROJECT_ROOT

    texts = yaml.safe_load((PROJECT_ROOT / "faq" / "campaigns.yml").read_text(encoding="utf-8"))["errors"]
    source = "".join(p.read_text() for p in (PROJECT_ROOT / "bot" / "campaigns").glob("*.py"))
    codes = set(re.findall(r'(?:CampaignError|Forbidden|InviteError)\("([a-z_]+)"', source))
    assert codes and codes <= set(texts)
