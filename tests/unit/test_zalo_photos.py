"""Campaign photos on Zalo: an outbox row with a photo, delivered by the real outbox worker through
the real ZaloSender and Zalo client to the Zalo stand-in (an HTTP server). The photo is uploaded
once (POST /v2.0/oa/upload/image) and its attachment_id reused for the next recipients; each gets
an image message, then the text with its buttons. Outside the 48-hour window nothing is uploaded;
a refused upload fails the row with the reason; a photo Zalo does not take goes as text only."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.campaigns import delivery, photos
from bot.channels.zalo import images, window
from bot.channels.zalo.api import ZaloClient
from bot.channels.zalo.channel import ZaloChannel
from bot.channels.zalo.sender import ZaloSender
from bot.config.settings import Settings
from bot.outbox.models import OutboxMessage
from bot.outbox.service import enqueue
from bot.outbox.worker import OutboxConfig, OutboxWorker
from bot.services import Services
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.support.citizens import wrote
from tests.support.images import png
from tests.support.zalo_standin import ZaloStandIn

BUTTONS = [{"title": "Đặt lịch", "payload": "/book_appointment"}]
TEXT = "Phường tổ chức cấp căn cước lưu động vào thứ Bảy."
_users = itertools.count(1)
_refs = itertools.count(1)


@pytest.fixture
def zalo() -> Iterator[ZaloStandIn]:
    standin = ZaloStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def campaign(db: Database, user: str, photo: str) -> int:
    message = delivery.render(TEXT, BUTTONS, photo=photo)
    return enqueue(db, "zalo", user, message, kind="campaign", ref=f"7:{next(_refs)}")


async def deliver(db: Database, zalo: ZaloStandIn, var_dir: Path, channel: ZaloChannel | None = None) -> None:
    """One batch of the real outbox worker (rows sent at the same time) with the real Zalo sender."""
    own = channel is None
    channel = channel or make_channel(db, zalo, var_dir)
    config = OutboxConfig(rate=0, per_recipient_seconds=0, quiet_start=dt.time(0), quiet_end=dt.time(0))
    worker = OutboxWorker(db, channel.services.ward.timezone, config, senders={"zalo": ZaloSender(channel)})
    try:
        assert await worker.run_once()
    finally:
        if own:
            await channel.aclose()


def make_channel(db: Database, zalo: ZaloStandIn, var_dir: Path) -> ZaloChannel:
    settings = Settings(_env_file=None, DATABASE_URL=db.url, VAR_DIR=var_dir, **zalo.env())
    services = Services.build(settings)
    services.db.dispose()
    services.db = db
    return ZaloChannel(services)


def row(db: Database, row_id: int) -> tuple[str, str]:
    with db.session() as session:
        found = session.get(OutboxMessage, row_id)
        return found.status, found.reason


def users(n: int) -> list[str]:
    return [f"zp{next(_users)}" for _ in range(n)]


async def test_a_photo_is_uploaded_once_and_sent_before_the_text_with_buttons(
    db: Database, zalo: ZaloStandIn, tmp_path: Path
) -> None:
    name = photos.store(tmp_path, png(3, 3))
    first, second = users(2)
    for user in (first, second):
        wrote(db, user, 1)
    ids = [campaign(db, user, name) for user in (first, second)]
    channel = make_channel(db, zalo, tmp_path)
    try:
        await deliver(db, zalo, tmp_path, channel)  # both rows in one batch, sent at the same time
        (upload,) = zalo.uploads()
        assert upload.answer["error"] == 0 and upload.headers["access_token"] == zalo.access_token
        assert upload.body == {"filename": name, "content_type": "image/png", "size": len(png(3, 3))}
        attachment_id = upload.answer["data"]["attachment_id"]
        for row_id, user in zip(ids, (first, second), strict=True):
            assert row(db, row_id) == ("sent", "")
            image, text = zalo.messages_to(user)  # two cs calls, the image first
            assert image["attachment"]["payload"] == {
                "template_type": "media",
                "elements": [{"media_type": "image", "attachment_id": attachment_id}],
            }
            assert "text" not in image
            assert text["text"] == TEXT
            assert text["attachment"]["payload"]["buttons"] == [
                {"title": "Đặt lịch", "type": "oa.query.hide", "payload": "/book_appointment"}
            ]
        # a later recipient reuses the cached attachment_id: still one upload
        (third,) = users(1)
        wrote(db, third, 2)
        later = campaign(db, third, name)
        await deliver(db, zalo, tmp_path, channel)
        assert row(db, later) == ("sent", "") and len(zalo.uploads()) == 1
        assert zalo.images_to(third) == [attachment_id]
    finally:
        await channel.aclose()


async def test_outside_the_window_nothing_is_uploaded_or_sent(
    db: Database, zalo: ZaloStandIn, tmp_path: Path
) -> None:
    name = photos.store(tmp_path, png())
    outside, never = users(2)
    wrote(db, outside, 49)
    ids = {user: campaign(db, user, name) for user in (outside, never)}
    await deliver(db, zalo, tmp_path)
    for row_id in ids.values():
        assert row(db, row_id) == ("skipped", "outside 48h window")
    assert zalo.calls == []  # no upload, no message


async def test_a_refused_upload_fails_the_row_with_the_reason_and_sends_nothing(
    db: Database, zalo: ZaloStandIn, tmp_path: Path
) -> None:
    name = photos.store(tmp_path, png())
    (user,) = users(1)
    wrote(db, user, 1)
    zalo.fail_upload_with = -201
    row_id = campaign(db, user, name)
    await deliver(db, zalo, tmp_path)
    assert row(db, row_id) == ("failed", "photo upload failed: zalo error -201")
    assert len(zalo.uploads()) == 1 and zalo.calls_for(user) == []


async def test_an_expired_token_on_upload_is_refreshed_and_the_upload_retried(
    db: Database, zalo: ZaloStandIn, tmp_path: Path
) -> None:
    name = photos.store(tmp_path, png())
    (user,) = users(1)
    wrote(db, user, 1)
    channel = make_channel(db, zalo, tmp_path)  # configured with the token that now expires
    zalo.expire_access_token()
    row_id = campaign(db, user, name)
    try:
        await deliver(db, zalo, tmp_path, channel)
    finally:
        await channel.aclose()
    assert row(db, row_id) == ("sent", "")
    assert [c.answer["error"] for c in zalo.uploads()] == [-216, 0] and len(zalo.refreshes()) == 1
    assert len(zalo.images_to(user)) == 1


async def test_an_upload_server_error_is_retried_later(db: Database, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={})

    (user,) = users(1)
    wrote(db, user, 1)
    settings = Settings(_env_file=None, DATABASE_URL=db.url, VAR_DIR=tmp_path)
    services = Services.build(settings)
    services.db.dispose()
    services.db = db
    client = ZaloClient(
        db,
        app_id="1",
        app_secret="s",
        access_token="a",
        refresh_token="r",
        api_base_url="https://zalo.test",
        oauth_base_url="https://zalo.test",
        transport=httpx.MockTransport(handler),
    )
    sender = ZaloSender(ZaloChannel(services, client))
    result = await sender.send(user, delivery.render(TEXT, BUTTONS, photo=photos.store(tmp_path, png())))
    assert (result.status, result.reason) == ("retry", "photo upload failed: HTTP 503")
    assert result.retry_after is not None
    await sender.zalo.aclose()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 32, images.LEFT_OUT_TYPE),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024 + 1), images.LEFT_OUT_SIZE),
    ],
)
async def test_a_photo_zalo_does_not_take_goes_as_text_only_with_the_reason(
    db: Database, zalo: ZaloStandIn, tmp_path: Path, data: bytes, reason: str
) -> None:
    name = photos.store(tmp_path, data)
    (user,) = users(1)
    wrote(db, user, 1)
    row_id = campaign(db, user, name)
    await deliver(db, zalo, tmp_path)
    assert row(db, row_id) == ("sent", reason)
    assert zalo.uploads() == [] and [m["text"] for m in zalo.messages_to(user)] == [TEXT]


async def test_with_room_for_the_text_only_the_photo_is_left_out(
    db: Database, zalo: ZaloStandIn, tmp_path: Path
) -> None:
    name = photos.store(tmp_path, png())
    (user,) = users(1)
    wrote(db, user, 1)
    for _ in range(window.QUOTA - 1):
        window.record_sent(db, user)
    row_id = campaign(db, user, name)
    await deliver(db, zalo, tmp_path)
    assert row(db, row_id) == ("sent", images.LEFT_OUT_QUOTA)
    assert zalo.uploads() == [] and [m["text"] for m in zalo.messages_to(user)] == [TEXT]


async def test_a_cached_id_zalo_refuses_is_replaced_by_a_new_upload(
    db: Database, zalo: ZaloStandIn, tmp_path: Path
) -> None:
    name = photos.store(tmp_path, png())
    (user,) = users(1)
    wrote(db, user, 1)
    channel = make_channel(db, zalo, tmp_path)
    channel.attachments.put(name, "an-id-zalo-no-longer-has")  # the stand-in refuses unknown ids
    row_id = campaign(db, user, name)
    try:
        await deliver(db, zalo, tmp_path, channel)
    finally:
        await channel.aclose()
    assert row(db, row_id) == ("sent", "")
    (upload,) = zalo.uploads()
    new_id = upload.answer["data"]["attachment_id"]
    assert zalo.images_to(user) == [new_id] and channel.attachments.get(name) == new_id
    assert [m.get("text") for m in zalo.messages_to(user)] == [None, TEXT]
