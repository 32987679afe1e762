"""The campaign pages in a real headless Chromium (Playwright), against the real app process.

`python -m bot serve` (no Rasa: the pages and the outbox need none) with the Telegram channel
talking to its local stand-in, so a confirmed campaign is really delivered and the report's
counts become non-zero. A cadre created with the CLI, citizens subscribed in their block and
in another one; then, in the browser: log in, create a campaign with a booking button and a
photo (a PNG made in the test), see the preview (the photo, the bubble, button, recipient
count), confirm, see the report fill up as the stand-in receives the messages (sendPhoto with
the text as caption, the file uploaded once, then its file_id) and a button press counted;
schedule a second campaign for tomorrow and pause, resume and cancel it; see the Project 06
progress per block. Finally an admin issues an invite code and gets the t.me link with the
bot's username.
Screenshots: var/staff-campaign-*.png.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.campaigns import invites
from bot.campaigns.models import Campaign
from bot.outbox.models import OutboxMessage
from bot.storage.db import Database
from bot.subscriptions import service as subscriptions
from tests.integration.test_staff_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, cli, wait_for_pages
from tests.support.appserver import AppServer, free_port
from tests.support.images import png
from tests.support.telegram_standin import TelegramStandIn

pytestmark = pytest.mark.integration
PASSWORD = "mat-khau-khoi-1"
KHOI_1 = [7001, 7002, 7003]  # Telegram chat ids subscribed in khoi_1 (7001 reported VNeID level 2)
KHOI_2 = [8001, 8002]
PHOTO = png(40, 30, (0, 120, 200))
TEXT = "Kính gửi bà con khối 1: phường hỗ trợ kích hoạt VNeID mức 2 sáng thứ Bảy.\nMời bà con đặt lịch."


@pytest.fixture(scope="module")
def standin() -> Iterator[TelegramStandIn]:
    """This module's own stand-in (the session's `app` fixture polls the shared one)."""
    server = TelegramStandIn(token="654321:CAMPAIGNS", username="phuong_chien_dich_bot")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, standin: TelegramStandIn) -> Iterator[AppServer]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (make chromium installs it)")
    app = AppServer(
        var_dir=tmp_path_factory.mktemp("campaigns-var"),
        command="serve",
        env_extra={
            "RASA_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "SECRET_KEY": "campaign-browser-test-secret-0123456789",
            "DATABASE_URL": "",
            "OUTBOX_QUIET_START": "00:00",  # no quiet hours: the test may run at night
            "OUTBOX_QUIET_END": "00:00",
            "OUTBOX_POLL_SECONDS": "0.2",
            **standin.env(),
        },
    )
    app.start()
    try:
        wait_for_pages(app)
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def db(server: AppServer) -> Iterator[Database]:
    database = Database(f"sqlite:///{server.var_dir / 'ward.db'}")
    yield database
    database.dispose()


def count_of(page: object, key: str) -> int:
    return int(page.locator(f'[data-count="{key}"] .count').inner_text())  # type: ignore[attr-defined]


def wait_for_count(page: object, key: str, want: int, timeout: float = 30.0) -> None:
    """Reload the report until a count reaches `want` (the outbox sends in the background)."""
    deadline = time.monotonic() + timeout
    while count_of(page, key) < want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} stayed at {count_of(page, key)}, wanted {want}")
        time.sleep(0.5)
        page.reload()  # type: ignore[attr-defined]


def test_cadre_creates_previews_confirms_and_follows_a_campaign(
    server: AppServer, standin: TelegramStandIn, db: Database
) -> None:
    from playwright.sync_api import sync_playwright

    created = cli(
        server, "create", "khoi1", "--name", "Lê Văn Khối", "--role", "cadre", "--blocks", "khoi_1",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    for chat in KHOI_1:
        subscriptions.subscribe(db, "telegram", str(chat), "khoi_1", "Đồng ý nhận thông báo")
    for chat in KHOI_2:
        subscriptions.subscribe(db, "telegram", str(chat), "khoi_2", "Đồng ý nhận thông báo")
    subscriptions.add_tag(db, "telegram", str(KHOI_1[0]), "vneid_muc2", "test")
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT09:00")

    SCREENSHOTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900}).new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{server.url}/staff/campaigns")
            assert "/staff/login" in page.url
            page.get_by_label("Tên đăng nhập").fill("khoi1")
            page.get_by_label("Mật khẩu").fill(PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url("**/staff/campaigns")

            # --- create: only the cadre's block is offered ---
            page.get_by_role("link", name="Tạo chiến dịch mới").click()
            page.wait_for_url("**/staff/campaigns/new")
            offered = page.locator('input[name="blocks"]')
            assert offered.count() == 1 and offered.get_attribute("value") == "khoi_1"
            offered.check()
            page.get_by_label("Tiêu đề").fill("Hỗ trợ kích hoạt VNeID")
            page.get_by_label("Nội dung tin nhắn").fill(TEXT)
            page.get_by_label("Loại nút 1").select_option("book")
            page.get_by_label("Ảnh kèm tin nhắn").set_input_files(
                files=[{"name": "lich-ho-tro.png", "mimeType": "image/png", "buffer": PHOTO}]
            )
            page.get_by_label("Đối tượng").select_option("")
            page.get_by_label("Gửi ngay").check()
            page.screenshot(path=str(SCREENSHOTS / "staff-campaign-new.png"), full_page=True)
            page.get_by_role("button", name="Xem trước").click()

            # --- preview: the bubble, its button, the count (khoi_1's 3, not khoi_2's 2) ---
            page.wait_for_url(re.compile(r".*/staff/campaigns/\d+/preview$"))
            campaign_id = int(page.url.split("/")[-2])
            assert page.locator(".bubble .caption").inner_text() == TEXT  # the caption of the photo
            image = page.locator("img.bubble-photo")
            image.wait_for()
            assert image.evaluate("img => img.complete && img.naturalWidth") == 40  # served, CSP allows it
            assert page.locator(".chat-button").all_inner_texts() == ["Đặt lịch hẹn"]
            assert page.locator("#recipients").inner_text() == "3"
            page.screenshot(path=str(SCREENSHOTS / "staff-campaign-preview.png"), full_page=True)

            # --- confirm: delivered through the outbox to the stand-in; the report fills up ---
            page.get_by_role("button", name="Xác nhận gửi").click()
            page.wait_for_url(f"**/staff/campaigns/{campaign_id}?n=confirmed")
            assert page.get_by_role("status").inner_text().startswith("Đã xác nhận.")
            wait_for_count(page, "sent", 3)
            assert count_of(page, "recipients") == 3
            assert count_of(page, "failed") == count_of(page, "blocked") == 0

            sends = standin.calls_of("sendPhoto")
            assert sorted(c.chat_id for c in sends if c.caption == TEXT) == KHOI_1
            assert not [c for c in sends + standin.calls_of("sendMessage") if c.chat_id in KHOI_2]
            assert standin.uploads == 1 and [c.upload is not None for c in sends].count(True) == 1
            assert next(c.upload for c in sends if c.upload is not None).data == PHOTO  # type: ignore[union-attr]
            call = next(c for c in sends if c.chat_id == KHOI_1[1])
            assert [b["text"] for row in call.keyboard for b in row] == ["Đặt lịch hẹn"]
            assert page.locator("img.bubble-photo").count() == 1  # the campaign page shows it too

            # a citizen presses the booking button: counted once in the report
            sent = next(
                m for m in standin.sent.values() if m["chat"]["id"] == KHOI_1[1] and m.get("caption") == TEXT
            )
            standin.press(sent, call.keyboard[0][0]["callback_data"])
            wait_for_count(page, "presses", 1)
            page.screenshot(path=str(SCREENSHOTS / "staff-campaign-report.png"), full_page=True)

            # --- a campaign for tomorrow: pause, resume, cancel ---
            page.goto(f"{server.url}/staff/campaigns/new")
            page.locator('input[name="blocks"]').check()
            page.get_by_label("Tiêu đề").fill("Nhắc lần hai")
            page.get_by_label("Nội dung tin nhắn").fill("Nhắc lại: phường hỗ trợ kích hoạt VNeID.")
            page.get_by_label("Gửi vào lúc").check()
            page.get_by_label("Gửi lúc (lần đầu)").fill(tomorrow)
            page.get_by_role("button", name="Xem trước").click()
            page.wait_for_url(re.compile(r".*/preview$"))
            second = int(page.url.split("/")[-2])
            assert page.locator("#recipients").inner_text() == "2"  # "has not reported": 7001 is left out
            page.get_by_role("button", name="Xác nhận gửi").click()
            page.wait_for_url(f"**/staff/campaigns/{second}?n=confirmed")
            assert page.locator("#status").inner_text() == "Đã lên lịch"
            for button, status in (
                ("Tạm dừng", "Tạm dừng"),
                ("Tiếp tục", "Đã lên lịch"),
                ("Hủy chiến dịch", "Đã hủy"),
            ):
                with page.expect_navigation():
                    page.get_by_role("button", name=button).click()
                assert page.locator("#status").inner_text() == status
            assert page.get_by_role("button", name="Tạm dừng").count() == 0

            page.goto(f"{server.url}/staff/campaigns")
            assert page.locator(f'tr[data-id="{second}"] .badge').inner_text() == "Đã hủy"

            # --- Project 06 progress: the cadre sees their block ---
            page.get_by_role("link", name="Đề án 06").click()
            page.wait_for_url("**/staff/progress")
            row = page.locator('tr[data-block="khoi_1"]')
            assert row.locator(".subscribed").inner_text() == "3"
            assert row.locator(".tagged").inner_text() == "1"
            assert row.locator(".share span").inner_text() == "33%"
            assert page.locator('tr[data-block="khoi_2"]').count() == 0
            page.screenshot(path=str(SCREENSHOTS / "staff-campaign-progress.png"), full_page=True)
        finally:
            browser.close()

    assert dialogs == []
    with db.session() as session:
        statuses = dict(session.execute(select(Campaign.id, Campaign.status)).tuples().all())
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "campaign")).all()
    assert statuses[second] == "cancelled"
    assert sorted(int(r.external_id) for r in rows) == KHOI_1  # the cancelled one never ran
    assert {r.ref for r in rows} == {f"{campaign_id}:1"}


def test_admin_issues_an_invite_with_the_bots_link(
    server: AppServer, standin: TelegramStandIn, db: Database
) -> None:
    from playwright.sync_api import sync_playwright

    created = cli(server, "create", "quantri", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="vi-VN").new_page()
            page.goto(f"{server.url}/staff/login")
            page.get_by_label("Tên đăng nhập").fill("quantri")
            page.get_by_label("Mật khẩu").fill(PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url("**/staff/queue")
            page.get_by_role("link", name="Mã mời").click()
            page.get_by_label("Khối 2").check()
            page.get_by_role("button", name="Cấp mã mời").click()
            code = page.locator("#invite-code").inner_text()
            link = page.locator("#invite-link").inner_text()
        finally:
            browser.close()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", code)
    assert link == f"https://t.me/{standin.username}?start={code}"
    staff = invites.redeem(db, code, 424242)
    assert staff.role == "cadre" and staff.blocks == ["khoi_2"]
