"""The staff side on Telegram, end to end: stand-in Bot API → real PTB polling in the app.

Invite links, staff-only commands, the /chiendich conversation (scope enforced against forged
callbacks), campaign management and reports, /lichhen with the audit log, button presses
counted, and the staff group notices. Staff accounts are created in the session app's database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.appointments.models import Appointment
from bot.campaigns import audience, delivery, invites, reports, service
from bot.campaigns.models import Campaign, CampaignPress, InviteCode
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.knowledge.kb import KnowledgeBase
from bot.outbox import service as outbox
from bot.outbox.models import OutboxMessage
from bot.staff import accounts
from bot.staff.accounts import Staff
from bot.staff.models import AuditLog, StaffUser
from bot.staff.tgtexts import text, texts
from bot.storage.db import Database, utcnow
from bot.subscriptions.service import add_tag, subscribe
from tests.integration.test_booking import up_to_name
from tests.support.appserver import AppServer
from tests.support.chat import buttons, say, user
from tests.support.images import png
from tests.support.telegram_standin import Call, TelegramStandIn

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
KB = KnowledgeBase(PROJECT_ROOT / "faq")
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
BLOCKS = [b.id for b in WARD.blocks]
TZ = ZoneInfo(WARD.timezone)
CAMPAIGN_ERRORS = reports.campaign_texts()["errors"]
_ids = itertools.count(int(time.time()) % 100_000 * 1000 + 500_000_001)


def new_id() -> int:
    return next(_ids)


@pytest.fixture(scope="module")
def tg(app: AppServer, telegram_standin: TelegramStandIn) -> TelegramStandIn:
    telegram_standin.wait_for("setMyCommands", timeout=60)
    telegram_standin.wait_for("getUpdates", timeout=60)
    return telegram_standin


def member(db: Database, role: str, blocks: list[str] | None = None, *, linked: bool = True) -> Staff:
    """A staff account; with `linked`, its Telegram user id (= its private chat id) is set."""
    number = new_id()
    return accounts.create_user(
        db, f"u{number}", f"Cán bộ {number}", secrets.token_urlsafe(12), role, blocks or [],
        telegram_user_id=number if linked else None,
    )  # fmt: skip


def chat_of(staff: Staff) -> int:
    assert staff.telegram_user_id is not None
    return staff.telegram_user_id


def send(tg: TelegramStandIn, chat: int, message: str, count: int = 1) -> list[Call]:
    """Type a message in a private chat and wait for `count` replies."""
    mark = tg.mark()
    tg.message(chat, message)
    return tg.wait_for("sendMessage", chat, since=mark, count=count)


def last_sent(tg: TelegramStandIn, chat: int) -> dict[str, Any]:
    return [m for m in tg.sent.values() if m["chat"]["id"] == chat][-1]


def press(
    tg: TelegramStandIn, chat: int, data: str, count: int = 1, method: str = "sendMessage"
) -> list[Call]:
    """Press (or forge) a button on the bot's last message to this chat."""
    mark = tg.mark()
    tg.press(last_sent(tg, chat), data)
    return tg.wait_for(method, chat, since=mark, count=count)


def datas(call: Call) -> list[str]:
    return [b.get("callback_data") or b.get("url") for row in call.keyboard for b in row]


def wait(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def campaign(db: Database, campaign_id: int) -> Campaign:
    with db.session() as session:
        row = session.get(Campaign, campaign_id)
        assert row is not None
        session.expunge(row)
        return row


def job_exists(db: Database, campaign_id: int) -> bool:
    with db.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "select id from apscheduler_jobs where id = ?", (f"campaign:{campaign_id}",)
        )
        return found.first() is not None


# --- invite links -------------------------------------------------------------------------------


def test_a_valid_invite_links_welcomes_and_sets_the_staff_commands_for_that_chat(
    tg: TelegramStandIn, db: Database
) -> None:
    code = invites.issue(db, None, "cadre", ["khoi_1", "khoi_2"], ward_blocks=BLOCKS)
    chat = new_id()
    reply = send(tg, chat, f"/start {code}")[0]
    assert text("roles.cadre") in reply.text and "Khối 1, Khối 2" in reply.text
    assert all(f"/{name}" in reply.text for name in ("chiendich", "baocao", "lichhen"))
    with db.session() as session:
        linked = session.scalar(select(StaffUser).where(StaffUser.telegram_user_id == chat))
        assert linked is not None and (linked.role, linked.blocks) == ("cadre", ["khoi_1", "khoi_2"])
    scoped = tg.wait_for("setMyCommands", until=lambda calls: any(
        (c.params.get("scope") or {}).get("chat_id") == chat for c in calls))  # fmt: skip
    mine = next(c for c in scoped if (c.params.get("scope") or {}).get("chat_id") == chat)
    assert mine.params["scope"]["type"] == "chat"
    assert {"chiendich", "baocao", "lichhen", "start", "huy"} <= {
        c["command"] for c in mine.params["commands"]
    }
    citizens = [c for c in tg.calls_of("setMyCommands") if not c.params.get("scope")]
    assert citizens and not {"chiendich", "baocao", "lichhen"} & {
        c["command"] for c in citizens[0].params["commands"]
    }


def test_reused_expired_and_forged_codes_and_a_linked_account_get_clear_replies(
    tg: TelegramStandIn, db: Database
) -> None:
    refusals = texts()["invite_errors"]
    used = invites.issue(db, None, "cadre", ["khoi_3"], ward_blocks=BLOCKS)
    first, second = new_id(), new_id()
    assert text("roles.cadre") in send(tg, first, f"/start {used}")[0].text
    assert send(tg, second, f"/start {used}")[0].text == refusals["used_code"].strip()
    old = utcnow() - dt.timedelta(hours=100)
    expired = invites.issue(db, None, "cadre", ["khoi_3"], ward_blocks=BLOCKS, now=old)
    assert send(tg, second, f"/start {expired}")[0].text == refusals["expired_code"].strip()
    forged = secrets.token_urlsafe(16)
    assert send(tg, second, f"/start {forged}")[0].text == refusals["invalid_code"].strip()
    fresh = invites.issue(db, None, "officer", [], ward_blocks=BLOCKS)
    assert send(tg, first, f"/start {fresh}")[0].text == refusals["telegram_already_linked"].strip()
    with db.session() as session:  # refused without spending the code; nothing linked to `second`
        assert (
            session.scalar(select(InviteCode.used_at).where(InviteCode.code_hash == invites._hash(fresh)))
            is None
        )
        assert session.scalar(select(StaffUser.id).where(StaffUser.telegram_user_id == second)) is None
    greeting = send(tg, second, "/start xin-chao")[0]  # not a code: the citizens' greeting
    assert WARD.name in greeting.text and greeting.keyboard


# --- staff only ---------------------------------------------------------------------------------


def test_staff_commands_tell_citizens_and_other_roles_they_are_not_for_them(
    tg: TelegramStandIn, db: Database
) -> None:
    citizen = new_id()
    for command in ("/chiendich", "/baocao", "/lichhen 15/12"):
        assert send(tg, citizen, command)[0].text == text("staff_only")
    officer, cadre = member(db, "officer"), member(db, "cadre", ["khoi_1"])
    assert send(tg, chat_of(officer), "/chiendich")[0].text == text("role_not_allowed")
    assert send(tg, chat_of(cadre), "/lichhen")[0].text == text("role_not_allowed")
    scoped = [c for c in tg.calls_of("setMyCommands") if (c.params.get("scope") or {}).get("chat_id")]
    assert {chat_of(officer), chat_of(cadre)} <= {c.params["scope"]["chat_id"] for c in scoped}
    assert citizen not in {c.params["scope"]["chat_id"] for c in scoped}
    accounts.update_user(db, cadre.username, active=False)  # a deactivated account is a citizen again
    assert send(tg, chat_of(cadre), "/chiendich")[0].text == text("staff_only")
    mark = tg.mark()  # in a group: nothing, even for staff (names must not leak into groups)
    group = -new_id()
    tg.message(group, "/lichhen", from_id=chat_of(officer))
    replies = tg.wait_for("sendMessage", group, since=mark)
    assert replies[0].text == text("private_only")


# --- /chiendich ---------------------------------------------------------------------------------


def test_a_cadre_composes_previews_and_confirms_a_campaign_and_forged_blocks_are_refused(
    tg: TelegramStandIn, db: Database
) -> None:
    cadre = member(db, "cadre", ["khoi_1", "khoi_2"])
    chat = chat_of(cadre)
    for _ in range(2):
        subscribe(db, "telegram", str(new_id()), "khoi_1", "Đồng ý nhận thông báo của phường")
    found = send(tg, chat, "/chiendich", count=2)
    assert [c.text for c in found] == [text("campaign_none"), text("ask_text")]
    body = "Phường nhắc: bà con chưa kích hoạt VNeID mức 2 vui lòng đến Quầy 2.\nXin cảm ơn!"
    ask_photo = send(tg, chat, body)[0]
    assert ask_photo.text == text("ask_photo") and datas(ask_photo) == ["sc:photo:skip"]
    ask_button = press(tg, chat, "sc:photo:skip")[0]
    assert ask_button.text == text("ask_button") and "sc:btn:book" in datas(ask_button)
    ask_blocks = press(tg, chat, "sc:btn:book")[0]
    assert datas(ask_blocks) == ["sc:blk:khoi_1", "sc:blk:khoi_2", "sc:blk:*done"]  # own blocks only
    forged = press(tg, chat, "sc:blk:khoi_3")[0]  # crafted callback for another block
    assert forged.text == CAMPAIGN_ERRORS["outside_blocks"].replace("{detail}", "khoi_3")
    edited = press(tg, chat, "sc:blk:khoi_1", method="editMessageReplyMarkup")[0]
    assert edited.keyboard[0][0]["text"].startswith("✓")
    mark = tg.mark()
    tg.press(tg.sent[int(edited.params["message_id"])], "sc:blk:*done")
    assert tg.wait_for("sendMessage", chat, since=mark)[0].text == text("ask_tag")
    assert press(tg, chat, "sc:tag:all")[0].text == text("ask_channels")
    assert press(tg, chat, "sc:ch:telegram")[0].text == text("ask_schedule")
    assert press(tg, chat, "sc:when:at")[0].text == text("ask_time")
    assert send(tg, chat, "hôm qua lúc 8h")[0].text == text("time_past")
    day = utcnow().astimezone(TZ).date() + dt.timedelta(days=3)
    expected = audience.count(db, ["khoi_1"], ["telegram"], None)
    preview = send(tg, chat, f"{day:%d/%m} lúc 8h", count=3)
    assert preview[0].text == text("preview_intro")
    assert preview[1].text == body  # exactly as citizens will get it, with its button
    assert [b["text"] for row in preview[1].keyboard for b in row] == [text("booking_button_title")]
    assert datas(preview[1]) == ["/book_appointment"]
    assert f"Số người nhận hiện tại: {expected}" in preview[2].text and expected >= 2
    assert datas(preview[2]) == ["sc:ok", "sc:no"]
    with db.session() as session:
        draft = session.scalars(select(Campaign).where(Campaign.created_by == cadre.id)).one()
        campaign_id = draft.id
    done = press(tg, chat, "sc:ok")[0]
    assert f"#{campaign_id}" in done.text and f"08:00 {day:%d/%m/%Y}" in done.text
    row = campaign(db, campaign_id)
    assert (row.status, row.schedule, row.blocks, row.tag_filter) == ("scheduled", "at", ["khoi_1"], None)
    assert row.run_at == dt.datetime.combine(day, dt.time(8), tzinfo=TZ)
    assert row.buttons == [{"title": text("booking_button_title"), "payload": "/book_appointment"}]
    assert wait(lambda: job_exists(db, campaign_id))  # in the app's scheduler
    assert press(tg, chat, "sc:ok")[0].text == text("stale_button")  # the flow is over

    # management: /chiendich lists it with its buttons
    listed = send(tg, chat, "/chiendich", count=2)[0]
    assert f"#{campaign_id}" in listed.text
    assert f"sm:pause:{campaign_id}" in datas(listed) and f"sm:cancel:{campaign_id}" in datas(listed)
    send(tg, chat, "/huy")
    assert press(tg, chat, f"sm:pause:{campaign_id}")[0].text == text("managed.pause", id=campaign_id)
    assert campaign(db, campaign_id).status == "paused"
    assert press(tg, chat, f"sm:resume:{campaign_id}")[0].text == text("managed.resume", id=campaign_id)
    assert campaign(db, campaign_id).status == "scheduled"
    report = press(tg, chat, f"sm:report:{campaign_id}")[0].text
    assert f"#{campaign_id}" in report and "Người nhận: 0" in report
    assert press(tg, chat, f"sm:cancel:{campaign_id}")[0].text == text("managed.cancel", id=campaign_id)
    assert campaign(db, campaign_id).status == "cancelled"
    assert wait(lambda: not job_exists(db, campaign_id))


def test_chiendich_with_a_photo_previews_and_sends_it_by_file_id(
    app: AppServer, tg: TelegramStandIn, db: Database
) -> None:
    cadre = member(db, "cadre", ["khoi_3"])
    chat = chat_of(cadre)
    tag = f"t{new_id()}"
    citizen = new_id()
    subscribe(db, "telegram", str(citizen), "khoi_3", "Đồng ý nhận thông báo của phường")
    add_tag(db, "telegram", str(citizen), tag, "test")
    send(tg, chat, "/chiendich", count=2)
    body = "Khối 3: mời bà con xem lịch tiêm chủng trong ảnh."
    assert send(tg, chat, body)[0].text == text("ask_photo")
    # a program renamed .jpg, sent as a file: refused, still at the photo step
    exe = tg.add_file(b"MZ\x90\x00" + b"\x00" * 100)[-1]
    mark = tg.mark()
    document = {**exe, "file_name": "lich.jpg", "mime_type": "image/jpeg"}
    tg.message(chat, None, document=document)
    refused = tg.wait_for("sendMessage", chat, since=mark)[0]
    assert refused.text == CAMPAIGN_ERRORS["photo_bad_type"]
    image = png(8, 8, (0, 128, 255))
    mark = tg.mark()
    sent_photo = tg.photo_message(chat, image)["message"]["photo"][-1]
    ask_button = tg.wait_for("sendMessage", chat, since=mark)[0]
    assert ask_button.text == text("ask_button")
    press(tg, chat, "sc:btn:book")
    press(tg, chat, "sc:blk:khoi_3", method="editMessageReplyMarkup")
    press(tg, chat, "sc:blk:*done")
    press(tg, chat, "sc:tag:all")
    press(tg, chat, "sc:ch:telegram")
    uploads = tg.uploads
    mark = tg.mark()
    tg.press(last_sent(tg, chat), "sc:when:now")
    shown = tg.wait_for("sendPhoto", chat, since=mark)[0]  # exactly as citizens will get it
    assert shown.caption == body and shown.params["photo"] == sent_photo["file_id"]
    assert datas(shown) == ["/book_appointment"]
    summary = tg.wait_for("sendMessage", chat, since=mark, count=2)
    assert summary[0].text == text("preview_intro") and datas(summary[1]) == ["sc:ok", "sc:no"]
    with db.session() as session:
        row = session.scalars(select(Campaign).where(Campaign.created_by == cadre.id)).one()
        session.expunge(row)
    assert row.photo and row.photo_file_id == sent_photo["file_id"]
    assert (app.var_dir / "uploads" / row.photo).read_bytes() == image  # stored like the pages' uploads
    # only this citizen: the tag narrows the audience of the confirmed campaign
    with db.session() as session:
        session.execute(update(Campaign).where(Campaign.id == row.id).values(tag_filter=tag))
    press(tg, chat, "sc:ok")
    got = tg.wait_for("sendPhoto", citizen, timeout=30)[0]
    assert got.caption == body and got.params["photo"] == sent_photo["file_id"]
    assert datas(got) == ["/book_appointment"]
    assert tg.uploads == uploads  # the file_id Telegram gave the staff's photo: no upload at all


def test_a_cadre_cannot_manage_a_campaign_outside_their_blocks_and_an_admin_sees_all_blocks(
    tg: TelegramStandIn, db: Database
) -> None:
    admin, cadre = member(db, "admin"), member(db, "cadre", ["khoi_1"])
    other = service.create(db, admin, title="Khối 3", text="Nhắc", blocks=["khoi_3"], ward_blocks=BLOCKS)
    service.confirm(db, admin, other.id)
    send(tg, chat_of(cadre), "/baocao 1", count=1)  # any message of the bot to press on
    refused = press(tg, chat_of(cadre), f"sm:cancel:{other.id}")[0]
    assert refused.text == CAMPAIGN_ERRORS["outside_blocks"].replace("{detail}", "khoi_3")
    assert campaign(db, other.id).status == "scheduled"
    assert send(tg, chat_of(cadre), f"/baocao {other.id}")[0].text == refused.text
    chat = chat_of(admin)
    send(tg, chat, "/chiendich", count=2)
    send(tg, chat, "Thông báo toàn phường")
    press(tg, chat, "sc:photo:skip")
    ask_blocks = press(tg, chat, "sc:btn:none")[0]
    assert datas(ask_blocks) == [f"sc:blk:{b}" for b in BLOCKS] + ["sc:blk:*done"]
    assert send(tg, chat, "/huy")[0].text == text("left")
    after = send(tg, chat, "xin chào")[0]  # out of the flow: the assistant answers again
    assert after.text != text("use_buttons") and WARD.name in after.text


def test_huy_after_the_preview_discards_the_draft(tg: TelegramStandIn, db: Database) -> None:
    cadre = member(db, "cadre", ["khoi_4"])
    chat = chat_of(cadre)
    send(tg, chat, "/chiendich", count=2)
    send(tg, chat, "Nhắc khối 4 họp tổ dân phố")
    press(tg, chat, "sc:photo:skip")
    press(tg, chat, "sc:btn:none")
    press(tg, chat, "sc:blk:khoi_4", method="editMessageReplyMarkup")
    press(tg, chat, "sc:blk:*done")
    press(tg, chat, "sc:tag:not")
    press(tg, chat, "sc:ch:both")
    preview = press(tg, chat, "sc:when:now", count=3)
    assert text("tag_not_vneid") in preview[2].text and "Telegram, Zalo" in preview[2].text
    assert send(tg, chat, "/huy")[0].text == text("left")
    with db.session() as session:
        row = session.scalars(select(Campaign).where(Campaign.created_by == cadre.id)).one()
    assert (row.status, row.tag_filter, row.channels) == ("cancelled", "not vneid_muc2", ["telegram", "zalo"])


# --- reports ------------------------------------------------------------------------------------


def test_a_finished_run_is_pushed_to_its_creator_and_baocao_shows_the_report(
    tg: TelegramStandIn, db: Database
) -> None:
    cadre = member(db, "cadre", ["khoi_5"])
    tag = f"t{new_id()}"
    reached = str(new_id())
    subscribe(db, "telegram", reached, "khoi_5", "Đồng ý nhận thông báo của phường")
    add_tag(db, "telegram", reached, tag, "test")
    info = service.create(
        db,
        cadre,
        title="Báo cáo thử",
        text="Nhắc khối 5",
        blocks=["khoi_5"],
        ward_blocks=BLOCKS,
        tag_filter=tag,
    )
    service.confirm(db, cadre, info.id)
    assert delivery.run_campaign(db, info.id) == 1
    ref = delivery.ref(info.id, 1)
    assert tg.wait_for("sendMessage", int(reached), timeout=30)[0].text == "Nhắc khối 5"
    deadline = time.monotonic() + 10  # the worker marks the row after Telegram answered
    while outbox.counts(db, "campaign", ref)["sent"] != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    reports.push_finished(db)  # what the campaigns:maintain job does every minute
    with db.session() as session:
        pushed = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_report", OutboxMessage.ref == ref)
        ).one()
    assert pushed.external_id == str(chat_of(cadre)) and "Đã gửi: 1" in pushed.message["text"]
    delivered = tg.wait_for("sendMessage", chat_of(cadre), timeout=30)
    assert delivered[0].text == pushed.message["text"]
    report = send(tg, chat_of(cadre), "/baocao")[0].text  # latest campaign
    assert f"#{info.id}" in report and "Người nhận: 1" in report and "Đã gửi: 1" in report
    assert send(tg, chat_of(cadre), f"/baocao {info.id}")[0].text == report
    assert send(tg, chat_of(cadre), "/baocao abc")[0].text == text("report_usage")

    # a citizen's press on the campaign's button is counted (payload hook of the channel)
    info2 = service.create(
        db, cadre, title="Nút", text="Đặt lịch", blocks=["khoi_5"], ward_blocks=BLOCKS, tag_filter=tag,
        buttons=[service.booking_button("Đặt lịch hẹn")],
    )  # fmt: skip
    service.confirm(db, cadre, info2.id)
    delivery.run_campaign(db, info2.id)
    with db.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == "campaign", OutboxMessage.ref == delivery.ref(info2.id, 1))
            .values(status="sent", sent_at=utcnow())
        )
    citizen = int(reached)
    keyboard = {"inline_keyboard": [[{"text": "Đặt lịch hẹn", "callback_data": "/book_appointment"}]]}
    message = {"message_id": new_id(), "date": int(time.time()), "chat": tg.chat(citizen),
               "from": tg.bot_user, "text": "Đặt lịch", "reply_markup": keyboard}  # fmt: skip
    tg.press(message, "/book_appointment")

    def presses() -> int:
        with db.session() as session:
            found = session.scalars(select(CampaignPress).where(CampaignPress.campaign_id == info2.id)).all()
            return len(found)

    assert wait(presses, timeout=30) == 1
    assert "Lượt bấm nút: 1" in send(tg, chat_of(cadre), f"/baocao {info2.id}")[0].text


# --- /lichhen -----------------------------------------------------------------------------------


def add_appointment(db: Database, day: dt.date, hour: int) -> str:
    code = "".join(secrets.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(6))
    with db.session() as session:
        session.add(
            Appointment(
                code=code, channel="telegram", external_id=str(new_id()), procedure="khai_sinh",
                counter="ho_tich", slot_start=dt.datetime.combine(day, dt.time(hour), tzinfo=TZ),
                status="booked", full_name="Nguyễn Văn An", phone="+84912345678", consent_at=utcnow(),
            )
        )  # fmt: skip
    return code


def audits(db: Database, staff: Staff) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(AuditLog.what).where(AuditLog.staff_user_id == staff.id)))


def test_lichhen_lists_the_day_with_names_for_officers_and_is_audited(
    tg: TelegramStandIn, db: Database
) -> None:
    today = utcnow().astimezone(TZ).date()
    tomorrow = today + dt.timedelta(days=1)
    code_today, code_tomorrow = add_appointment(db, today, 9), add_appointment(db, tomorrow, 10)
    officer = member(db, "officer")
    listing = send(tg, chat_of(officer), "/lichhen")[0].text
    assert code_today in listing and code_tomorrow not in listing
    assert "Nguyễn Văn An" in listing and "0912 345 678" in listing
    assert KB.procedures["khai_sinh"].title in listing and "Quầy 1" in listing
    assert audits(db, officer) == [f"view appointments {today.isoformat()} (telegram)"]
    listing = send(tg, chat_of(officer), "/lichhen mai")[0].text
    assert code_tomorrow in listing and code_today not in listing
    assert audits(db, officer)[-1] == f"view appointments {tomorrow.isoformat()} (telegram)"
    assert send(tg, chat_of(officer), "/lichhen abc")[0].text == text("day_bad")
    admin = member(db, "admin")
    assert code_today in send(tg, chat_of(admin), "/lichhen hôm nay")[0].text
    assert len(audits(db, admin)) == 1


# --- staff group notices ------------------------------------------------------------------------


def test_a_booking_made_in_the_web_chat_is_posted_to_the_staff_group_without_personal_data(
    tg: TelegramStandIn, app: AppServer, db: Database
) -> None:
    sender = user()
    up_to_name(app, db, sender)
    say(app, sender, "Nguyễn Văn An")
    body = say(app, sender, "0912 345 678")
    body = say(app, sender, payload=buttons(body)["Đồng ý"])
    say(app, sender, payload=buttons(body)["Xác nhận"])
    with db.session() as session:
        booked = session.scalars(select(Appointment).where(Appointment.external_id == sender)).one()
        notice = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "staff_notice", OutboxMessage.ref.startswith(f"booked:{booked.code}@")
            )
        ).one()
    assert (notice.channel, notice.external_id) == ("telegram", str(tg.staff_group))
    local = booked.slot_start.astimezone(TZ)
    assert booked.code in notice.message["text"] and f"{local:%H:%M}" in notice.message["text"]
    assert "Nguyễn" not in notice.message["text"] and "912" not in notice.message["text"]
    posted = tg.wait_for("sendMessage", tg.staff_group, until=lambda calls: any(
        booked.code in c.text for c in calls), timeout=30)  # fmt: skip
    assert any(c.text == notice.message["text"] for c in posted)


def test_a_weekly_campaign_asks_for_the_last_day(tg: TelegramStandIn, db: Database) -> None:
    admin = member(db, "admin")
    chat = chat_of(admin)
    send(tg, chat, "/chiendich", count=2)
    send(tg, chat, "Nhắc hằng tuần: thu gom rác sáng thứ bảy")
    press(tg, chat, "sc:photo:skip")
    press(tg, chat, "sc:btn:none")
    press(tg, chat, "sc:blk:khoi_2", method="editMessageReplyMarkup")
    press(tg, chat, "sc:blk:khoi_3", method="editMessageReplyMarkup")
    press(tg, chat, "sc:blk:*done")
    press(tg, chat, "sc:tag:all")
    press(tg, chat, "sc:ch:telegram")
    press(tg, chat, "sc:when:weekly")
    today = utcnow().astimezone(TZ).date()
    first, last = today + dt.timedelta(days=2), today + dt.timedelta(days=30)
    assert send(tg, chat, f"{first:%d/%m} 7h30")[0].text == text("ask_until")
    assert send(tg, chat, f"{today:%d/%m}")[0].text in (text("until_before"), text("time_past"))
    preview = send(tg, chat, f"{last:%d/%m/%Y}", count=3)
    assert f"{last:%d/%m/%Y}" in preview[2].text and "Khối 2, Khối 3" in preview[2].text
    press(tg, chat, "sc:ok")
    with db.session() as session:
        row = session.scalars(select(Campaign).where(Campaign.created_by == admin.id)).one()
    assert (row.status, row.schedule, row.blocks) == ("scheduled", "weekly", ["khoi_2", "khoi_3"])
    assert row.run_at == dt.datetime.combine(first, dt.time(7, 30), tzinfo=TZ)
    assert row.until == dt.datetime.combine(last, dt.time(23, 59), tzinfo=TZ)
