"""The staff pages in a real headless Chromium (Playwright), against the real app process.

`python -m bot serve` with a dummy RASA_URL (the staff pages need no Rasa), an officer created
with the CLI, an appointment booked through bot.appointments.service with a name carrying
`<script>alert(1)</script>`; then, in the browser: log in, find the booking in the queue with
the name shown as text (no dialog fires), mark it served, download the CSV and read it.
Screenshots go to var/staff-queue.png and var/staff-queue-served.png.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.appointments import service
from bot.appointments.models import Appointment
from bot.appointments.slots import Calendar
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.staff.models import AuditLog
from bot.storage.db import Database
from tests.support.appserver import ROOT, AppServer, free_port

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "mat-khau-quay-1"
NAME = "Nguyễn Văn Đức <script>alert(1)</script>"
SCREENSHOTS = PROJECT_ROOT / "var"


def wait_for_pages(server: AppServer, timeout: float = 60.0) -> None:
    """Ready when the login page answers (/healthz stays 503: there is no Rasa here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process and server.process.poll() is not None:
            raise RuntimeError(f"app exited with {server.process.returncode}; see {server.log_path}")
        try:
            if httpx.get(f"{server.url}/staff/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"staff pages not ready after {timeout:.0f} s; see {server.log_path}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (make chromium installs it)")
    app = AppServer(
        var_dir=tmp_path_factory.mktemp("staff-var"),
        command="serve",
        env_extra={
            "RASA_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "SECRET_KEY": "browser-test-secret-key-0123456789",
            "DATABASE_URL": "",
        },
    )
    app.start()
    try:
        wait_for_pages(app)
        yield app
    finally:
        app.stop()


def cli(server: AppServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "staff", *args],
        cwd=ROOT,
        env=server.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def first_open_day(calendar: Calendar, today: dt.date) -> dt.date:
    """Today when the desk opens today, else the next day it does (the queue is then that day's)."""
    day = today
    while calendar.day_closed(day) is not None or not list(calendar.slot_starts(day)):
        day += dt.timedelta(days=1)
    return day


def test_officer_logs_in_sees_the_queue_marks_served_and_exports(server: AppServer) -> None:
    from playwright.sync_api import sync_playwright

    created = cli(
        server,
        "create",
        "lan",
        "--name",
        "Trần Thị Lan",
        "--role",
        "officer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr

    ward = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
    calendar = Calendar(ward)
    today = dt.datetime.now(ward.tz).date()
    day = first_open_day(calendar, today)
    start = next(iter(calendar.slot_starts(day)))[0]
    db = Database(f"sqlite:///{server.var_dir / 'ward.db'}")
    booking = service.book(
        db,
        calendar,
        channel="web",
        external_id="browser-test",
        procedure="khai_sinh",
        start=start,
        now=start - dt.timedelta(hours=12),
        full_name=NAME,
        phone="0912 345 678",
        consent=True,
    )
    code = booking.code

    dialogs: list[str] = []
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                accept_downloads=True, locale="vi-VN", viewport={"width": 1280, "height": 800}
            )
            page = context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

            page.goto(f"{server.url}/staff/queue")
            assert "/staff/login" in page.url  # no session: the login form
            page.get_by_label("Tên đăng nhập").fill("lan")
            page.get_by_label("Mật khẩu").fill(PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url("**/staff/queue*")
            if day != today:
                page.goto(f"{server.url}/staff/queue?date={day.isoformat()}")

            row = page.locator(f'tr[data-code="{code}"]')
            row.wait_for()
            assert row.locator("td.name").inner_text() == NAME  # the markup is shown as text
            assert row.locator("td.phone").inner_text() == "0912 345 678"
            assert row.locator(".badge").inner_text() == "Đã đặt"
            assert page.locator("script").count() == 0
            page.screenshot(path=str(SCREENSHOTS / "staff-queue.png"), full_page=True)

            row.get_by_role("button", name="Đã phục vụ").click()
            page.wait_for_url("**n=status_changed*")
            row = page.locator(f'tr[data-code="{code}"]')
            assert row.locator(".badge").inner_text() == "Đã phục vụ"
            assert page.get_by_role("status").inner_text() == "Đã cập nhật trạng thái lịch hẹn."
            page.screenshot(path=str(SCREENSHOTS / "staff-queue-served.png"), full_page=True)

            with page.expect_download() as info:
                page.get_by_role("link", name="Tải về CSV").click()
            download = info.value
            assert download.suggested_filename == f"lich-hen-{day.isoformat()}.csv"
            content = Path(download.path()).read_bytes()
        finally:
            browser.close()

    assert dialogs == []  # alert(1) never ran
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Ngày", "Giờ", "Mã lịch hẹn"]
    mine = next(r for r in rows[1:] if r[2] == code)
    assert mine[0] == day.strftime("%d/%m/%Y") and mine[1] == start.strftime("%H:%M")
    assert mine[3] == "Đăng ký khai sinh" and mine[5] == "Đã phục vụ"
    assert mine[6:] == [NAME, "0912 345 678"]

    with db.session() as session:
        assert session.scalar(select(Appointment.status).where(Appointment.code == code)) == "served"
        audit = [(row.username, row.action, row.what) for row in session.scalars(select(AuditLog))]
    db.dispose()
    assert ("lan", "login", "login") in audit
    assert ("lan", "status", f"mark served {code}") in audit
    assert ("lan", "export", f"export csv {day.isoformat()}") in audit
    assert any(
        action == "view" and what == f"view appointments {day.isoformat()}" for _, action, what in audit
    )
    assert all("Nguyễn" not in what and "0912" not in what for _, _, what in audit)
