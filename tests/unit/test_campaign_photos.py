"""Campaign photos: the file checks, the staff pages' upload (multipart, CSRF), the preview, and
the delivery to the Telegram stand-in (the real PTB Bot and TelegramSender): sendPhoto with the
text as caption and the keyboard, a long text after the photo, the file_id reused by the second
recipient (one upload), a stale file_id re-uploaded; Zalo sends the text alone when the photo file
is missing (Zalo's photo delivery: tests/unit/test_zalo_photos.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select
from telegram import Bot

from bot.campaigns import delivery, photos
from bot.campaigns.errors import CampaignError
from bot.campaigns.models import Campaign
from bot.channels.telegram.channel import file_url
from bot.channels.telegram.format import CallbackStore
from bot.channels.telegram.sender import TelegramSender
from bot.channels.web import web_router
from bot.channels.zalo.images import LEFT_OUT_MISSING
from bot.channels.zalo.sender import ZaloSender
from bot.outbox.models import OutboxMessage
from bot.outbox.types import SendResult
from bot.services import set_services
from bot.storage.models import Base
from tests.support.images import png
from tests.support.telegram_standin import TelegramStandIn
from tests.unit import test_staff_campaigns as staff_pages
from tests.unit.test_staff_campaigns import Pages, form

# the campaign pages' fixtures (a migrated SQLite file, staff accounts, subscribers of khoi_1/khoi_2)
template_db = staff_pages.template_db
fast_hashes = staff_pages.fast_hashes
pages = staff_pages.pages

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200  # a Windows program, named .jpg below
BIG_JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * (6 * 1024 * 1024)


# --- the checks --------------------------------------------------------------------------------


def test_only_jpeg_png_and_webp_up_to_5_mb_are_accepted(tmp_path: Path) -> None:
    assert photos.check(png()) == "png"
    assert photos.check(b"\xff\xd8\xff\xdb" + b"\x00" * 10) == "jpg"
    assert photos.check(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"
    for data, code in ((EXE, "photo_bad_type"), (BIG_JPEG, "photo_too_big"), (b"", "photo_empty")):
        with pytest.raises(CampaignError) as refused:
            photos.store(tmp_path, data)
        assert refused.value.code == code
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())
    name = photos.store(tmp_path, png())
    assert re.fullmatch(r"[0-9a-f]{64}\.png", name) and photos.store(tmp_path, png()) == name  # same content
    assert photos.path_of(tmp_path, name) == tmp_path / "uploads" / name
    assert (
        photos.path_of(tmp_path, "../ward.db") is None and photos.path_of(tmp_path, "0" * 64 + ".png") is None
    )


def test_the_migration_matches_the_model(pages: Pages) -> None:
    with pages.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "campaigns" in repr(d) and "campaign_" not in repr(d)] == []
    columns = {c["name"] for c in inspect(pages.db.engine).get_columns("campaigns")}
    assert {"photo", "photo_file_id"} <= columns


# --- the staff pages ---------------------------------------------------------------------------


def post(pages: Pages, csrf: str, data: bytes, filename: str = "anh.png", **values: object):
    return pages.client.post(
        "/staff/campaigns", data=form(csrf, **values), files={"photo": (filename, data, "image/png")}
    )


def uploads(pages: Pages) -> list[Path]:
    folder = pages.services.settings.var_dir / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_photo_uploaded_on_the_form_is_stored_and_shown_in_the_preview(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    form_html = pages.client.get("/staff/campaigns/new").text
    assert 'enctype="multipart/form-data"' in form_html and 'type="file" name="photo"' in form_html
    created = post(pages, csrf, png())
    assert created.status_code == 303, created.text
    (row,) = pages.campaigns()
    assert row.photo and photos.NAME.match(row.photo) and row.photo_file_id is None
    assert [p.name for p in uploads(pages)] == [row.photo]
    preview = pages.client.get(f"/staff/campaigns/{row.id}/preview").text
    src = f"/staff/campaigns/photos/{row.photo}"
    assert f'<img class="bubble-photo" src="{src}"' in preview and 'class="caption"' in preview
    assert f'src="{src}"' in pages.client.get(f"/staff/campaigns/{row.id}").text  # the campaign page
    image = pages.client.get(src)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == png()
    assert pages.client.get("/staff/campaigns/photos/" + "0" * 64 + ".png").status_code == 404
    pages.client.cookies.clear()
    assert pages.client.get(src).status_code == 303  # staff only (citizens: /media/<name>)


def test_a_long_text_previews_the_photo_before_the_text(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    assert post(pages, csrf, png(), text="Dài " * 300).status_code == 303
    (row,) = pages.campaigns()
    preview = pages.client.get(f"/staff/campaigns/{row.id}/preview").text
    assert 'class="bubble photo-only"' in preview and 'class="caption"' not in preview


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (EXE, "anh.jpg", "Tệp này không phải ảnh JPEG, PNG hoặc WebP."),
        (BIG_JPEG, "anh.jpg", "Ảnh lớn quá 5 MB."),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_created(
    pages: Pages, data: bytes, filename: str, message: str
) -> None:
    csrf = pages.login("khoi1")
    refused = post(pages, csrf, data, filename)
    assert refused.status_code == 422 and message in refused.text
    assert "Nhắc kích hoạt VNeID" in refused.text  # what was typed is kept
    assert pages.campaigns() == [] and uploads(pages) == []


def test_an_upload_without_the_csrf_token_or_by_an_officer_stores_nothing(pages: Pages) -> None:
    pages.login("khoi1")
    assert post(pages, "forged", png()).status_code == 403
    csrf = pages.login("lan")
    assert post(pages, csrf, png()).status_code == 403
    assert pages.campaigns() == [] and uploads(pages) == []


def test_a_photo_with_a_campaign_the_service_refuses_is_not_kept(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    refused = post(pages, csrf, png(), blocks=["khoi_2"])  # outside the cadre's blocks
    assert refused.status_code == 403 and pages.campaigns() == [] and uploads(pages) == []


def test_no_file_chosen_means_no_photo(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    assert post(pages, csrf, b"", "").status_code == 303
    assert pages.campaigns()[0].photo is None and uploads(pages) == []


def test_the_public_media_path_serves_stored_photos_only(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(web_router())
    app.state.services = SimpleNamespace(settings=SimpleNamespace(var_dir=tmp_path))
    name = photos.store(tmp_path, png())
    (tmp_path / "ward.db").write_bytes(b"secret")
    with TestClient(app) as client:
        served = client.get(f"/media/{name}")
        assert served.status_code == 200 and served.content == png()
        assert (
            served.headers["content-type"] == "image/png"
            and served.headers["x-content-type-options"] == "nosniff"
        )
        for wrong in ("ward.db", "..%2Fward.db", "0" * 64 + ".png", name.replace(".png", ".exe")):
            assert client.get(f"/media/{wrong}").status_code == 404


# --- delivery ----------------------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[TelegramStandIn]:
    photos._file_ids.clear()  # file ids of an earlier stand-in mean nothing to this one
    server = TelegramStandIn()
    server.start()
    yield server
    server.stop()


async def deliver(pages: Pages, standin: TelegramStandIn, campaign_id: int) -> list[SendResult]:
    """Run the campaign and send its outbox rows with the real TelegramSender (what the worker does)."""
    delivery.run_campaign(pages.db, campaign_id)
    with pages.db.session() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "campaign").order_by(OutboxMessage.id)
        ).all()
        work = [(r.external_id, dict(r.message)) for r in rows]
    bot = Bot(standin.token, base_url=standin.base_url, base_file_url=file_url(standin.base_url))
    set_services(pages.services)  # the senders find the uploads under the app's var dir
    try:
        async with bot:
            sender = TelegramSender(bot, pages.db, CallbackStore(), "…")
            return [await sender.send(chat, message) for chat, message in work]
    finally:
        set_services(None)


def confirmed(pages: Pages, data: bytes, **values: object) -> Campaign:
    csrf = pages.login("khoi1")
    assert post(pages, csrf, data, **values).status_code == 303
    (row,) = pages.campaigns()
    assert (
        pages.client.post(f"/staff/campaigns/{row.id}/confirm", data={"csrf_token": csrf}).status_code == 303
    )
    return row


def test_a_page_campaign_goes_as_sendphoto_with_caption_and_keyboard_uploaded_once(
    pages: Pages, standin: TelegramStandIn
) -> None:
    row = confirmed(pages, png())
    results = asyncio.run(deliver(pages, standin, row.id))
    assert [r.status for r in results] == ["sent"] * 3  # khoi_1's three subscribers
    calls = standin.calls_of("sendPhoto")
    assert len(calls) == 3 and not standin.calls_of("sendMessage")
    assert all(c.caption == row.text for c in calls)
    assert all(
        c.keyboard == [[{"text": "Đặt lịch hẹn", "callback_data": "/book_appointment"}]] for c in calls
    )
    assert calls[0].upload is not None and calls[0].upload.data == png()
    assert [c.upload for c in calls[1:]] == [None, None] and standin.uploads == 1  # the file_id reused
    with pages.db.session() as session:
        file_id = session.get(Campaign, row.id).photo_file_id  # type: ignore[union-attr]
    assert file_id and all(c.params["photo"] == file_id for c in calls[1:])


def test_concurrent_first_sends_upload_the_photo_once(pages: Pages, standin: TelegramStandIn) -> None:
    row = confirmed(pages, png(5, 5))
    delivery.run_campaign(pages.db, row.id)
    message = delivery.render(row.text, row.buttons, photo=row.photo)

    async def sends() -> list[SendResult]:
        bot = Bot(standin.token, base_url=standin.base_url)
        set_services(pages.services)
        try:
            async with bot:
                sender = TelegramSender(bot, pages.db, CallbackStore(), "…")
                return await asyncio.gather(*(sender.send(str(chat), message) for chat in range(100, 110)))
        finally:
            set_services(None)

    assert [r.status for r in asyncio.run(sends())] == ["sent"] * 10  # like the outbox worker: at once
    assert standin.uploads == 1 and len(standin.calls_of("sendPhoto")) == 10


def test_a_text_over_1024_characters_follows_the_photo_with_the_keyboard(
    pages: Pages, standin: TelegramStandIn
) -> None:
    body = "Thông báo dài. " * 80  # about 1,200 characters: too long for a caption
    row = confirmed(pages, png(3, 3), text=body)
    results = asyncio.run(deliver(pages, standin, row.id))
    assert [r.status for r in results] == ["sent"] * 3
    photos_sent, texts = standin.calls_of("sendPhoto"), standin.calls_of("sendMessage")
    assert len(photos_sent) == len(texts) == 3 and standin.uploads == 1
    assert all(not c.caption and not c.keyboard for c in photos_sent)
    assert all(c.text == body.strip() and c.keyboard for c in texts)
    order = [c.method for c in standin.calls if c.method in ("sendPhoto", "sendMessage") and c.chat_id == 10]
    assert order == ["sendPhoto", "sendMessage"]


def test_a_file_id_telegram_refuses_is_replaced_by_a_new_upload(
    pages: Pages, standin: TelegramStandIn
) -> None:
    row = confirmed(pages, png(4, 4))
    assert row.photo
    photos.remember(pages.db, standin.token, row.photo, "a-file-id-of-another-bot")
    results = asyncio.run(deliver(pages, standin, row.id))
    assert [r.status for r in results] == ["sent"] * 3 and standin.uploads == 1
    assert [c.status for c in standin.calls_of("sendPhoto")] == [400, 200, 200, 200]


def test_zalo_sends_the_text_and_buttons_and_records_a_missing_photo_left_out(tmp_path: Path) -> None:
    sent: list[dict] = []

    class Zalo:
        settings = SimpleNamespace(var_dir=tmp_path)

        async def deliver(self, user_id: str, messages: list[dict], *, kind: str) -> SendResult:
            sent.extend(messages)
            return SendResult("sent")

    message = delivery.render(
        "Nhắc bà con", [{"title": "Đặt lịch", "payload": "/book_appointment"}], photo="a.png"
    )
    result = asyncio.run(ZaloSender(Zalo()).send("u1", message))  # type: ignore[arg-type]
    assert result == SendResult("sent", LEFT_OUT_MISSING)
    assert sent == [
        {"text": "Nhắc bà con", "buttons": [{"title": "Đặt lịch", "payload": "/book_appointment"}]}
    ]
