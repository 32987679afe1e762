"""Staff pages (/staff) through FastAPI's TestClient on a real SQLite file.

Auth (sessions, expiry, logout), CSRF (missing or wrong token: 403, nothing changed),
lockout, roles (cadres never see names or phone numbers), audit rows, XSS escaping,
search, status changes, CSV (BOM, Vietnamese, formulas neutralised), summary, admin.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.appointments import service
from bot.appointments.models import Appointment
from bot.appointments.slots import Calendar
from bot.config.settings import Settings
from bot.services import Services
from bot.staff import accounts
from bot.staff.auth import SESSION_COOKIE, Signer, StaffSettings
from bot.staff.models import AuditLog, StaffUser
from bot.staff.web import staff_router
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Base

PASSWORD = "mat-khau-dai-1"
XSS = "<script>alert(1)</script>"
NAME = f"Nguyễn Thị Hồng {XSS}"
PHONE = "0912 345 678"


@dataclass
class Desk:
    services: Services
    client: TestClient
    calendar: Calendar
    day: dt.date

    @property
    def db(self) -> Database:
        return self.services.db

    def user(self, username: str, role: str, blocks: list[str] | None = None) -> None:
        known = {block.id for block in self.services.ward.blocks}
        accounts.create_user(self.db, username, f"Cán bộ {username}", PASSWORD, role, blocks, known)

    def login(self, username: str, password: str = PASSWORD) -> TestClient:
        self.client.cookies.clear()
        page = self.client.get("/staff/login")
        response = self.client.post(
            "/staff/login",
            data={"username": username, "password": password, "csrf_token": token(page.text)},
        )
        assert response.status_code == 303, response.text
        return self.client

    def book(
        self, name: str = NAME, phone: str = PHONE, at: str = "09:00", procedure: str = "khai_sinh"
    ) -> str:
        start = dt.datetime.combine(self.day, dt.time.fromisoformat(at), tzinfo=self.services.ward.tz)
        now = dt.datetime.combine(self.day, dt.time(0), tzinfo=self.services.ward.tz) - dt.timedelta(days=1)
        booking = service.book(
            self.db,
            self.calendar,
            channel="web",
            external_id=f"u-{time.monotonic_ns()}",
            procedure=procedure,
            start=start,
            now=now,
            full_name=name,
            phone=phone,
            consent=True,
        )
        return booking.code

    def audit(self) -> list[tuple[str, str, str]]:
        with self.db.session() as session:
            rows = session.scalars(select(AuditLog).order_by(AuditLog.id))
            return [(row.username, row.action, row.what) for row in rows]

    def status_of(self, code: str) -> str:
        with self.db.session() as session:
            return session.scalar(select(Appointment.status).where(Appointment.code == code))


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@lru_cache(maxsize=1)
def shared_services() -> Services:
    """Ward and knowledge base are read once for the module (each test gets its own database)."""
    return Services.build(Settings(DATABASE_URL="sqlite://"))


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for the tests (the product keeps the library's defaults)."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(accounts, "_dummy", {})


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    settings = Settings(VAR_DIR=tmp_path, DATABASE_URL="", SECRET_KEY="a test secret key, long enough")
    shared = shared_services()
    services = Services(settings, shared.ward, shared.kb, Database(settings.effective_database_url))
    upgrade(services.db.url)
    app = FastAPI()
    config = StaffSettings(STAFF_MAX_FAILED_LOGINS=5, STAFF_LOCKOUT_MINUTES=15, STAFF_SESSION_HOURS=10)
    app.include_router(staff_router(services, config))
    calendar = Calendar(services.ward)
    day = dt.date(2026, 11, 30)  # a Monday
    with TestClient(app, follow_redirects=False) as client:
        yield Desk(services, client, calendar, day)
    services.db.dispose()


def queue_url(desk: Desk, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"date": desk.day.isoformat(), **params}.items())
    return f"/staff/queue?{query}"


# --- schema ----------------------------------------------------------------------------------


def test_migration_matches_the_models(desk: Desk) -> None:
    with desk.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = ("'staff_users'", "'staff_audit_log'", "Table('staff_users'", "Table('staff_audit_log'")
    assert [d for d in diff if any(name in repr(d) for name in mine)] == []


# --- auth --------------------------------------------------------------------------------------


def test_login_sets_a_signed_httponly_samesite_cookie(desk: Desk) -> None:
    desk.user("lan", "officer")
    page = desk.client.get("/staff/login")
    assert page.status_code == 200 and "Đăng nhập" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    response = desk.client.post(
        "/staff/login", data={"username": "lan", "password": PASSWORD, "csrf_token": token(page.text)}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/queue"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/staff" in cookie
    assert "Max-Age=36000" in cookie
    assert desk.client.get("/staff/queue").status_code == 200
    assert ("lan", "login", "login") in desk.audit()


def test_wrong_password_and_unknown_user_are_refused_alike(desk: Desk) -> None:
    desk.user("lan", "officer")
    for username, password in (("lan", "sai-mat-khau"), ("khong-co", PASSWORD)):
        page = desk.client.get("/staff/login")
        response = desk.client.post(
            "/staff/login", data={"username": username, "password": password, "csrf_token": token(page.text)}
        )
        assert response.status_code == 401
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in response.text
        assert SESSION_COOKIE not in response.cookies


def test_login_without_the_forms_token_is_refused(desk: Desk) -> None:
    desk.user("lan", "officer")
    desk.client.get("/staff/login")
    response = desk.client.post("/staff/login", data={"username": "lan", "password": PASSWORD})
    assert response.status_code == 403
    response = desk.client.post(
        "/staff/login", data={"username": "lan", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in desk.client.cookies


def test_pages_without_a_session_redirect_to_login_and_posts_get_403(desk: Desk) -> None:
    code = desk.book()
    for path in (
        "/staff/queue",
        "/staff/search?q=ABC",
        "/staff/export.csv",
        "/staff/summary",
        "/staff/admin",
    ):
        response = desk.client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/staff/login?next=%2Fstaff%2F")
    response = desk.client.post(
        "/staff/appointments/status", data={"code": code, "status": "served", "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert desk.status_of(code) == "booked"
    desk.client.cookies.set(SESSION_COOKIE, "forged.cookie.value", path="/staff")
    assert desk.client.get("/staff/queue").status_code == 303
    assert desk.audit() == []


def test_a_session_expires(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    desk.user("lan", "officer")
    client = desk.login("lan")
    assert client.get("/staff/queue").status_code == 200
    later = time.time() + 10 * 3600 + 5
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: later)
        assert client.get("/staff/queue").status_code == 303


def test_a_cookie_signed_with_another_key_is_refused(desk: Desk) -> None:
    desk.user("lan", "officer")
    user = accounts.list_users(desk.db)[0]
    value, _ = Signer("another key", 3600).new_session(user.id, user.session_version)
    desk.client.cookies.set(SESSION_COOKIE, value, path="/staff")
    assert desk.client.get("/staff/queue").status_code == 303


def test_logout_ends_the_session_even_for_a_copied_cookie(desk: Desk) -> None:
    desk.user("lan", "officer")
    client = desk.login("lan")
    copied = client.cookies.get(SESSION_COOKIE)
    page = client.get("/staff/queue")
    response = client.post("/staff/logout", data={"csrf_token": token(page.text)})
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/login")
    client.cookies.set(SESSION_COOKIE, copied, path="/staff")
    assert client.get("/staff/queue").status_code == 303


def test_empty_secret_key_gets_a_random_key_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.staff.auth"):
        first, second = Signer("", 60), Signer("", 60)
    assert "SECRET_KEY is empty" in caplog.text
    value, _ = first.new_session(1, 0)
    assert first.read_session(value) is not None
    assert second.read_session(value) is None


# --- lockout -----------------------------------------------------------------------------------


def _try(desk: Desk, password: str) -> int:
    page = desk.client.get("/staff/login")
    return desk.client.post(
        "/staff/login", data={"username": "lan", "password": password, "csrf_token": token(page.text)}
    ).status_code


def test_five_wrong_passwords_lock_the_account(desk: Desk) -> None:
    desk.user("lan", "officer")
    assert [_try(desk, "sai-mat-khau") for _ in range(4)] == [401] * 4
    assert _try(desk, "sai-mat-khau") == 429
    assert _try(desk, PASSWORD) == 429  # the right password does not help while locked
    with desk.db.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == "lan"))
        remaining = user.locked_until - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=14) < remaining <= dt.timedelta(minutes=15)


def test_the_lock_ends_after_the_lockout_time(desk: Desk) -> None:
    desk.user("lan", "officer")
    now = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    for _ in range(3):
        accounts.authenticate(desk.db, "lan", "wrong", max_failed=3, now=now)
    assert accounts.authenticate(desk.db, "lan", PASSWORD, max_failed=3, now=now).reason == "locked"
    later = now + dt.timedelta(minutes=15, seconds=1)
    assert accounts.authenticate(desk.db, "lan", PASSWORD, max_failed=3, now=later).staff is not None


def test_lockout_is_configurable(tmp_path: Path) -> None:
    config = StaffSettings(STAFF_MAX_FAILED_LOGINS=2, STAFF_LOCKOUT_MINUTES=1)
    assert (config.max_failed_logins, config.lockout_minutes) == (2, 1)


# --- queue, roles, audit ------------------------------------------------------------------------


def test_officer_sees_names_as_text_and_views_are_audited(desk: Desk) -> None:
    code = desk.book()
    desk.user("lan", "officer")
    page = desk.login("lan").get(queue_url(desk))
    assert page.status_code == 200
    assert code in page.text
    assert XSS not in page.text
    assert "Nguyễn Thị Hồng &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "0912 345 678" in page.text
    assert "Đăng ký khai sinh" in page.text and "Quầy 1 - Hộ tịch" in page.text
    assert ("lan", "view", "view appointments 2026-11-30") in desk.audit()
    assert all("Nguyễn" not in what and "0912" not in what for _, _, what in desk.audit())


def test_cadre_never_sees_names_or_phones_and_cannot_change_status(desk: Desk) -> None:
    code = desk.book()
    desk.user("hoa", "cadre", ["khoi_1"])
    client = desk.login("hoa")
    page = client.get(queue_url(desk))
    assert page.status_code == 200 and code in page.text
    assert "Nguyễn" not in page.text and "0912" not in page.text and "Họ tên" not in page.text
    assert "/staff/appointments/status" not in page.text
    export = client.get(f"/staff/export.csv?date={desk.day.isoformat()}")
    assert "Nguyễn" not in export.content.decode("utf-8-sig") and "0912" not in export.text
    found = client.post("/staff/search", data={"q": "0912345678", "csrf_token": token(page.text)})
    assert found.status_code == 200 and found.text.count('data-code="') == 0
    assert ("hoa", "view", "view appointments 2026-11-30") not in desk.audit()
    response = client.post(
        "/staff/appointments/status", data={"code": code, "status": "served", "csrf_token": token(page.text)}
    )
    assert response.status_code == 403
    assert desk.status_of(code) == "booked"
    assert client.get("/staff/admin").status_code == 403


def test_filters_by_counter_procedure_and_status(desk: Desk) -> None:
    birth = desk.book(at="09:00", procedure="khai_sinh")
    residence = desk.book(name="Trần Văn Bình", phone="0987654321", at="09:30", procedure="tam_tru")
    desk.user("lan", "officer")
    client = desk.login("lan")
    page = client.get(queue_url(desk))
    assert birth in page.text and residence in page.text
    assert page.text.index(birth) < page.text.index(residence)  # slot order
    page = client.get(queue_url(desk, counter="cong_an"))
    assert residence in page.text and birth not in page.text
    page = client.get(queue_url(desk, procedure="khai_sinh"))
    assert birth in page.text and residence not in page.text
    page = client.get(queue_url(desk, status="served"))
    assert birth not in page.text and residence not in page.text
    assert ("lan", "view", "view appointments 2026-11-30 counter=cong_an") in desk.audit()
    other_day = client.get("/staff/queue?date=2026-12-01")
    assert birth not in other_day.text and "Không có lịch hẹn nào." in other_day.text
    bad = client.get("/staff/queue?date=30-11-2026")
    assert bad.status_code == 200 and "Ngày không hợp lệ" in bad.text


# --- status changes and CSRF ----------------------------------------------------------------------


def _mark(client: TestClient, code: str, status: str, csrf: str | None) -> int:
    data = {"code": code, "status": status, "next": "/staff/queue?date=2026-11-30"}
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post("/staff/appointments/status", data=data).status_code


def test_mark_arrived_served_and_no_show(desk: Desk) -> None:
    code = desk.book()
    desk.user("lan", "officer")
    client = desk.login("lan")
    csrf = token(client.get(queue_url(desk)).text)
    for status in ("arrived", "served", "no_show"):
        assert _mark(client, code, status, csrf) == 303
        assert desk.status_of(code) == status
    assert ("lan", "status", f"mark served {code}") in desk.audit()
    response = client.post(
        "/staff/appointments/status",
        data={"code": code, "status": "served", "csrf_token": csrf, "next": "/staff/queue?date=2026-11-30"},
    )
    assert response.headers["location"] == "/staff/queue?date=2026-11-30&n=status_changed"
    assert "Đã cập nhật trạng thái" in client.get(response.headers["location"]).text


def test_status_post_without_or_with_a_wrong_csrf_token_changes_nothing(desk: Desk) -> None:
    code = desk.book()
    desk.user("lan", "officer")
    client = desk.login("lan")
    before = desk.audit()
    assert _mark(client, code, "served", None) == 403
    assert _mark(client, code, "served", "not-the-token") == 403
    assert _mark(client, code, "served", "") == 403
    assert desk.status_of(code) == "booked"
    assert desk.audit() == before


def test_a_token_from_another_session_is_refused(desk: Desk) -> None:
    code = desk.book()
    desk.user("lan", "officer")
    desk.user("mai", "officer")
    old = token(desk.login("mai").get(queue_url(desk)).text)
    client = desk.login("lan")
    assert _mark(client, code, "served", old) == 403
    assert desk.status_of(code) == "booked"


def test_unknown_status_or_code_and_open_redirects(desk: Desk) -> None:
    code = desk.book()
    desk.user("lan", "officer")
    client = desk.login("lan")
    csrf = token(client.get(queue_url(desk)).text)
    assert _mark(client, code, "cancelled", csrf) == 403  # the desk does not cancel
    response = client.post(
        "/staff/appointments/status",
        data={"code": "ZZZZZZ", "status": "served", "csrf_token": csrf, "next": "https://evil.example/"},
    )
    assert response.headers["location"] == "/staff/queue?n=not_found"


# --- search ----------------------------------------------------------------------------------------


def test_search_by_code_or_phone(desk: Desk) -> None:
    code = desk.book()
    other = desk.book(name="Trần Văn Bình", phone="0987654321", at="10:00")
    desk.user("lan", "officer")
    client = desk.login("lan")
    csrf = token(client.get(queue_url(desk)).text)

    def search(text: str) -> str:
        response = client.post("/staff/search", data={"q": text, "csrf_token": csrf})
        assert response.status_code == 200
        return response.text

    page = search(f"{code.lower()[:3]}-{code.lower()[3:]}")
    assert code in page and other not in page
    assert 'name="next" value="/staff/queue?date=2026-11-30"' in page
    for query in ("0912345678", "+84912345678", "0912 345 678"):
        page = search(query)
        assert code in page and other not in page, query
    assert ("lan", "search", f"search code {code} (1 found)") in desk.audit()
    assert ("lan", "search", "search phone (1 found)") in desk.audit()
    assert "Không có lịch hẹn nào." in search("XYZXYZ")
    search("Hồng")  # a name typed into the box: searched as a code, not written to the log
    assert ("lan", "search", "search code (not a code) (0 found)") in desk.audit()
    assert client.post("/staff/search", data={"q": code}).status_code == 403  # no token
    assert client.get(f"/staff/search?q={code}").headers["location"] == "/staff/queue"


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_export_has_a_bom_vietnamese_and_no_live_formulas(desk: Desk) -> None:
    code = desk.book()
    formula = desk.book(name='=HYPERLINK("http://evil.example","Bấm vào")', phone="0987654321", at="10:00")
    desk.user("lan", "officer")
    client = desk.login("lan")
    response = client.get(f"/staff/export.csv?date={desk.day.isoformat()}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="lich-hen-2026-11-30.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "Ngày",
        "Giờ",
        "Mã lịch hẹn",
        "Thủ tục",
        "Quầy",
        "Trạng thái",
        "Họ tên",
        "Số điện thoại",
    ]
    by_code = {row[2]: row for row in rows[1:]}
    assert by_code[code][6] == NAME
    assert by_code[code][7] == "0912 345 678"
    assert by_code[code][:2] == ["30/11/2026", "09:00"]
    assert by_code[code][5] == "Đã đặt"
    assert by_code[formula][6].startswith("'=HYPERLINK(")
    assert ("lan", "export", "export csv 2026-11-30") in desk.audit()


# --- summary ---------------------------------------------------------------------------------------


def test_daily_summary_counts_by_status_and_procedure(desk: Desk) -> None:
    first = desk.book(at="09:00")
    desk.book(name="Trần Văn Bình", phone="0987654321", at="09:30")
    desk.book(name="Lê Thị Cúc", phone="0977123456", at="09:30", procedure="tam_tru")
    service.set_status(desk.db, first, "served")
    desk.user("hoa", "cadre")
    page = desk.login("hoa").get("/staff/summary?from=2026-11-30")
    assert page.status_code == 200
    assert "3 lịch" in page.text
    tiles = {
        status: int(count)
        for status, count in re.findall(r'tile (\w+)"><span class="count">(\d+)<', page.text)
    }
    assert tiles == {"booked": 2, "arrived": 0, "served": 1, "no_show": 0, "cancelled": 0}
    rows = re.findall(r"<tr><td>([^<]+)</td>((?:<td>\d+</td>)+)<td><strong>(\d+)</strong>", page.text)
    assert [(name, int(total)) for name, _, total in rows] == [
        ("Đăng ký khai sinh", 2),
        ("Đăng ký tạm trú, gia hạn tạm trú", 1),
    ]
    assert "Nguyễn" not in page.text


# --- admin -------------------------------------------------------------------------------------------


def test_admin_creates_updates_and_resets_accounts(desk: Desk) -> None:
    desk.user("admin", "admin")
    client = desk.login("admin")
    csrf = token(client.get("/staff/admin").text)
    response = client.post(
        "/staff/admin/users",
        data={
            "username": "hoa",
            "display_name": "Phạm Thị Hoa",
            "password": "mot-mat-khau",
            "role": "cadre",
            "blocks": ["khoi_1", "khoi_3"],
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 303
    hoa = {u.username: u for u in accounts.list_users(desk.db)}["hoa"]
    assert (hoa.role, hoa.blocks, hoa.active) == ("cadre", ["khoi_1", "khoi_3"], True)
    bad = client.post(
        "/staff/admin/users",
        data={
            "username": "x",
            "display_name": "X",
            "password": "short",
            "role": "officer",
            "csrf_token": csrf,
        },
    )
    assert bad.status_code == 422 and "Tên đăng nhập gồm" in bad.text
    response = client.post(
        "/staff/admin/users/hoa", data={"role": "officer", "active": "1", "csrf_token": csrf}
    )
    assert response.status_code == 303
    response = client.post("/staff/admin/users/hoa", data={"role": "officer", "csrf_token": csrf})
    hoa = {u.username: u for u in accounts.list_users(desk.db)}["hoa"]
    assert (hoa.role, hoa.blocks, hoa.active) == ("officer", [], False)
    response = client.post(
        "/staff/admin/users/admin", data={"role": "officer", "active": "1", "csrf_token": csrf}
    )
    assert response.status_code == 422  # not yourself
    response = client.post(
        "/staff/admin/users/hoa/password", data={"password": "moi-moi-moi", "csrf_token": csrf}
    )
    assert response.status_code == 303
    whats = [what for _, action, what in desk.audit() if action == "admin"]
    assert whats == [
        "create staff hoa role=cadre",
        "update staff hoa role=officer active=True blocks=",
        "update staff hoa role=officer active=False blocks=",
        "reset password hoa",
    ]
    admin_page = client.get("/staff/admin").text
    assert "reset password hoa" in admin_page and "moi-moi-moi" not in admin_page


def test_admin_posts_need_the_token_and_the_role(desk: Desk) -> None:
    desk.user("admin", "admin")
    desk.user("lan", "officer")
    client = desk.login("admin")
    response = client.post("/staff/admin/users/lan", data={"role": "admin", "active": "1"})
    assert response.status_code == 403
    client = desk.login("lan")
    csrf = token(client.get(queue_url(desk)).text)
    response = client.post(
        "/staff/admin/users/lan", data={"role": "admin", "active": "1", "csrf_token": csrf}
    )
    assert response.status_code == 403
    assert {u.username: u.role for u in accounts.list_users(desk.db)}["lan"] == "officer"


def test_deactivating_or_resetting_ends_existing_sessions(desk: Desk) -> None:
    desk.user("lan", "officer")
    client = desk.login("lan")
    assert client.get("/staff/queue").status_code == 200
    accounts.update_user(desk.db, "lan", password="mat-khau-moi-2")
    assert client.get("/staff/queue").status_code == 303
    desk.login("lan", "mat-khau-moi-2")
    accounts.update_user(desk.db, "lan", active=False)
    assert client.get("/staff/queue").status_code == 303
    page = client.get("/staff/login")
    response = client.post(
        "/staff/login", data={"username": "lan", "password": "mat-khau-moi-2", "csrf_token": token(page.text)}
    )
    assert response.status_code == 401
