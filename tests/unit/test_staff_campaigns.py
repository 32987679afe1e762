"""Campaign pages (/staff/campaigns, /staff/progress, /staff/invites) through FastAPI's TestClient.

A real SQLite file with every migration, real staff accounts (password login), the real campaign
service; the scheduler is the app's (build_scheduler), not started: confirm adds its job.
Scope: a cadre posting a block outside theirs is refused and nothing is stored; no CSRF token,
refused; officers get 403. Then the flow: create, preview (count), confirm, report, pause,
resume, cancel; the progress page; invite codes (admins only, shown once, redeemable).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.campaigns import invites
from bot.campaigns.errors import InviteError
from bot.campaigns.models import Campaign, InviteCode
from bot.config.settings import Settings
from bot.outbox.models import OutboxMessage
from bot.scheduler import build_scheduler
from bot.services import Services
from bot.staff import accounts
from bot.staff.models import AuditLog
from bot.staff.web import staff_router
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.subscriptions import service as subscriptions

PASSWORD = "mat-khau-dai-1"


@dataclass
class Pages:
    services: Services
    client: TestClient
    app: FastAPI

    @property
    def db(self) -> Database:
        return self.services.db

    def user(self, username: str, role: str, blocks: list[str] | None = None) -> None:
        known = {block.id for block in self.services.ward.blocks}
        accounts.create_user(self.db, username, f"Cán bộ {username}", PASSWORD, role, blocks, known)

    def login(self, username: str) -> str:
        """Sign in; returns the session's CSRF token."""
        self.client.cookies.clear()
        page = self.client.get("/staff/login")
        response = self.client.post(
            "/staff/login", data={"username": username, "password": PASSWORD, "csrf_token": token(page.text)}
        )
        assert response.status_code == 303, response.text
        return token(self.client.get("/staff/progress").text)

    def campaigns(self) -> list[Campaign]:
        with self.db.session() as session:
            return list(session.scalars(select(Campaign).order_by(Campaign.id)))

    def status(self, campaign_id: int) -> str:
        with self.db.session() as session:
            return session.get(Campaign, campaign_id).status  # type: ignore[union-attr]


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def form(csrf: str, **values: object) -> dict[str, object]:
    """A new-campaign form as the browser posts it (three button rows, each with all fields)."""
    data: dict[str, object] = {
        "csrf_token": csrf,
        "title": "Nhắc kích hoạt VNeID",
        "text": "Bà con khối 1 chưa kích hoạt VNeID mức 2, mời đến phường.",
        "blocks": ["khoi_1"],
        "tag_filter": "",
        "channels": ["telegram"],
        "schedule": "now",
        "run_at": "",
        "until": "",
        "offset_days": "1",
        "button_kind": ["book", "", ""],
        "button_title": ["", "", ""],
        "button_guide": ["", "", ""],
        "button_url": ["", "", ""],
    }
    data.update(values)
    return data


@lru_cache(maxsize=1)
def shared_services() -> Services:
    return Services.build(Settings(DATABASE_URL="sqlite://"))


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("campaign-pages") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(accounts, "_dummy", {})


@pytest.fixture
def pages(tmp_path: Path, template_db: Path) -> Iterator[Pages]:
    shutil.copyfile(template_db, tmp_path / "ward.db")
    settings = Settings(VAR_DIR=tmp_path, DATABASE_URL="", SECRET_KEY="a test secret key, long enough")
    shared = shared_services()
    services = Services(settings, shared.ward, shared.kb, Database(settings.effective_database_url))
    app = FastAPI()
    app.include_router(staff_router(services))
    app.state.scheduler = build_scheduler(services.db, services.ward.timezone)
    with TestClient(app, follow_redirects=False) as client:
        result = Pages(services, client, app)
        result.user("boss", "admin")
        result.user("lan", "officer")
        result.user("khoi1", "cadre", ["khoi_1"])
        for i in range(3):
            subscriptions.subscribe(services.db, "telegram", f"1{i}", "khoi_1", "Đồng ý")
        for i in range(2):
            subscriptions.subscribe(services.db, "telegram", f"2{i}", "khoi_2", "Đồng ý")
        subscriptions.add_tag(services.db, "telegram", "10", "vneid_muc2", "test")
        yield result
    services.db.dispose()


# --- scope ------------------------------------------------------------------------------------


def test_the_form_offers_only_the_cadres_blocks(pages: Pages) -> None:
    pages.login("khoi1")
    html = pages.client.get("/staff/campaigns/new").text
    assert re.findall(r'name="blocks" value="([a-z0-9_]+)"', html) == ["khoi_1"]
    pages.login("boss")
    html = pages.client.get("/staff/campaigns/new").text
    assert len(re.findall(r'name="blocks" value="', html)) == len(pages.services.ward.blocks)


def test_a_cadre_posting_another_block_is_refused_and_nothing_is_stored(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    for blocks in (["khoi_2"], ["khoi_1", "khoi_2"]):
        response = pages.client.post("/staff/campaigns", data=form(csrf, blocks=blocks))
        assert response.status_code == 403
        assert "Anh/chị chỉ được gửi cho khối mình phụ trách. Ngoài phạm vi: khoi_2." in response.text
        assert "Nhắc kích hoạt VNeID" in response.text  # what was typed is kept
    assert pages.campaigns() == []


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(pages: Pages) -> None:
    pages.login("khoi1")
    assert pages.client.post("/staff/campaigns", data=form("")).status_code == 403
    assert pages.client.post("/staff/campaigns", data=form("forged")).status_code == 403
    assert pages.campaigns() == []
    csrf = pages.login("khoi1")
    created = pages.client.post("/staff/campaigns", data=form(csrf))
    campaign_id = int(created.headers["location"].split("/")[3])
    assert pages.client.post(f"/staff/campaigns/{campaign_id}/confirm", data={}).status_code == 403
    assert (
        pages.client.post(f"/staff/campaigns/{campaign_id}/cancel", data={"csrf_token": "x"}).status_code
        == 403
    )
    assert pages.status(campaign_id) == "draft"


def test_officers_have_no_campaign_pages_and_no_nav_link(pages: Pages) -> None:
    csrf = pages.login("lan")
    for path in ("/staff/campaigns", "/staff/campaigns/new"):
        response = pages.client.get(path)
        assert response.status_code == 403
        assert "Vai trò của anh/chị không được gửi thông báo của phường." in response.text
    assert pages.client.post("/staff/campaigns", data=form(csrf)).status_code == 403
    assert pages.campaigns() == []
    queue = pages.client.get("/staff/queue").text
    assert 'href="/staff/campaigns"' not in queue and 'href="/staff/progress"' in queue
    pages.login("khoi1")
    assert 'href="/staff/campaigns"' in pages.client.get("/staff/queue").text


def test_a_cadre_cannot_see_or_act_on_a_campaign_of_another_block(pages: Pages) -> None:
    csrf = pages.login("boss")
    created = pages.client.post("/staff/campaigns", data=form(csrf, blocks=["khoi_2"]))
    assert created.status_code == 303
    campaign_id = pages.campaigns()[0].id
    csrf = pages.login("khoi1")
    assert f'data-id="{campaign_id}"' not in pages.client.get("/staff/campaigns").text
    for path in (f"/staff/campaigns/{campaign_id}", f"/staff/campaigns/{campaign_id}/preview"):
        assert pages.client.get(path).status_code == 403
    response = pages.client.post(f"/staff/campaigns/{campaign_id}/confirm", data={"csrf_token": csrf})
    assert response.status_code == 403
    assert pages.status(campaign_id) == "draft"


def test_pages_without_a_session_redirect_to_login(pages: Pages) -> None:
    pages.client.cookies.clear()
    for path in ("/staff/campaigns", "/staff/campaigns/new", "/staff/progress", "/staff/invites"):
        response = pages.client.get(path)
        assert response.status_code == 303 and "/staff/login" in response.headers["location"]
    assert pages.client.post("/staff/campaigns", data=form("x")).status_code == 403


# --- the flow ---------------------------------------------------------------------------------


def test_create_preview_confirm_report_pause_resume_cancel(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    data = form(
        csrf,
        text="Bà con <b>khối 1</b>\nmời kích hoạt VNeID.",
        button_kind=["book", "guide", "link"],
        button_title=["", "Cách kích hoạt", "Cổng dịch vụ công"],
        button_guide=["", "vneid.kich_hoat_muc2", ""],
        button_url=["", "", "https://dichvucong.gov.vn"],
    )
    created = pages.client.post("/staff/campaigns", data=data)
    assert created.status_code == 303, created.text
    (row,) = pages.campaigns()
    assert created.headers["location"] == f"/staff/campaigns/{row.id}/preview"
    assert row.status == "draft" and row.blocks == ["khoi_1"] and row.created_by is not None
    assert row.buttons == [
        {"title": "Đặt lịch hẹn", "payload": "/book_appointment"},
        {"title": "Cách kích hoạt", "payload": '/start_guide{"procedure": "vneid.kich_hoat_muc2"}'},
        {"title": "Cổng dịch vụ công", "payload": "https://dichvucong.gov.vn"},
    ]

    preview = pages.client.get(f"/staff/campaigns/{row.id}/preview").text
    assert '<strong id="recipients">3</strong>' in preview  # khoi_1's three, not khoi_2's two
    assert "Bà con &lt;b&gt;khối 1&lt;/b&gt;\nmời kích hoạt VNeID." in preview  # escaped, as typed
    assert re.findall(r'data-kind="(\w+)">([^<]+)<', preview) == [
        ("book", "Đặt lịch hẹn"),
        ("guide", "Cách kích hoạt"),
        ("link", "Cổng dịch vụ công ↗"),
    ]

    confirmed = pages.client.post(f"/staff/campaigns/{row.id}/confirm", data={"csrf_token": csrf})
    assert confirmed.headers["location"] == f"/staff/campaigns/{row.id}?n=confirmed"
    assert pages.status(row.id) == "scheduled"
    assert pages.app.state.scheduler.get_job(f"campaign:{row.id}") is not None
    again = pages.client.post(f"/staff/campaigns/{row.id}/confirm", data={"csrf_token": csrf})
    assert again.status_code == 422 and "Chỉ xác nhận được bản nháp" in again.text

    report = pages.client.get(confirmed.headers["location"]).text
    assert "Đã xác nhận." in report
    assert re.search(r'data-count="recipients"><span class="count">0<', report)

    for name, status in (("pause", "paused"), ("resume", "scheduled"), ("cancel", "cancelled")):
        response = pages.client.post(f"/staff/campaigns/{row.id}/{name}", data={"csrf_token": csrf})
        assert response.status_code == 303, response.text
        assert pages.status(row.id) == status
    assert pages.app.state.scheduler.get_job(f"campaign:{row.id}") is None
    resumed = pages.client.post(f"/staff/campaigns/{row.id}/resume", data={"csrf_token": csrf})
    assert resumed.status_code == 422
    with pages.db.session() as session:
        audit = [r.what for r in session.scalars(select(AuditLog).where(AuditLog.action == "campaign"))]
    assert audit == [
        f"create campaign {row.id} blocks=khoi_1",
        f"confirm campaign {row.id}",
        f"pause campaign {row.id}",
        f"resume campaign {row.id}",
        f"cancel campaign {row.id}",
    ]


def test_the_report_counts_the_outbox_rows(pages: Pages) -> None:
    from bot.campaigns import delivery
    from bot.storage.db import utcnow

    csrf = pages.login("khoi1")
    pages.client.post("/staff/campaigns", data=form(csrf, tag_filter="not vneid_muc2"))
    campaign_id = pages.campaigns()[0].id
    assert (
        '<strong id="recipients">2</strong>'
        in pages.client.get(f"/staff/campaigns/{campaign_id}/preview").text
    )
    pages.client.post(f"/staff/campaigns/{campaign_id}/confirm", data={"csrf_token": csrf})
    delivery.run_campaign(pages.db, campaign_id, utcnow(), pages.services.ward.timezone)
    with pages.db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
    report = pages.client.get(f"/staff/campaigns/{campaign_id}").text
    assert re.search(r'data-count="recipients"><span class="count">2<', report)
    assert re.search(r'data-count="queued"><span class="count">2<', report)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"text": "x" * 4097}, "Nội dung tin nhắn cần từ 1 đến 4096 ký tự."),
        ({"schedule": "at"}, "Vui lòng chọn ngày giờ gửi."),
        ({"schedule": "at", "run_at": "2020-01-01T09:00"}, "Thời điểm gửi đã qua"),
        ({"schedule": "weekly", "run_at": "2099-01-01T09:00"}, "Gửi hằng tuần cần ngày kết thúc"),
        ({"schedule": "relative", "offset_days": "99"}, "Số ngày trước ngày hẹn cần từ 0 đến 60."),
        (
            {"button_kind": ["link", "", ""], "button_url": ["http://x.vn", "", ""]},
            "phải bắt đầu bằng https://",
        ),
        ({"button_kind": ["guide", "", ""]}, "Vui lòng chọn hướng dẫn cho nút bấm."),
        ({"channels": []}, "Kênh gửi không hợp lệ"),
        ({"blocks": []}, "Khối không có trong danh sách"),
        ({"tag_filter": "admin"}, "Điều kiện lọc không hợp lệ"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(pages: Pages, values: dict, message: str) -> None:
    csrf = pages.login("khoi1")
    response = pages.client.post("/staff/campaigns", data=form(csrf, **values))
    assert response.status_code == 422
    assert message in response.text
    assert pages.campaigns() == []


def test_schedules_at_weekly_and_relative_are_stored_in_the_wards_time(pages: Pages) -> None:
    csrf = pages.login("khoi1")
    weekly = form(csrf, schedule="weekly", run_at="2099-01-05T09:30", until="2099-02-01")
    assert pages.client.post("/staff/campaigns", data=weekly).status_code == 303
    relative = form(csrf, schedule="relative", offset_days="2", text="Mã {code} lúc {time} ngày {date}.")
    created = pages.client.post("/staff/campaigns", data=relative)
    assert created.status_code == 303
    first, second = pages.campaigns()
    tz = pages.services.ward.tz
    assert first.run_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") == "2099-01-05 09:30"
    assert first.until.astimezone(tz).date().isoformat() == "2099-02-01"
    assert second.schedule == "relative" and second.offset_days == 2
    preview = pages.client.get(created.headers["location"]).text
    assert "Mã ABC234 lúc 09:00 ngày 01/12/2026." in preview  # example values in the preview


# --- progress ---------------------------------------------------------------------------------


def test_progress_by_block(pages: Pages) -> None:
    pages.login("lan")  # officers see the ward (aggregates only)
    html = pages.client.get("/staff/progress").text
    shares = dict(re.findall(r'data-block="(\w+)">.*?<span>(\d+%)</span>', html, re.S))
    assert shares["khoi_1"] == "33%" and shares["khoi_2"] == "0%" and len(shares) == 5
    pages.login("khoi1")  # a cadre their blocks
    html = pages.client.get("/staff/progress").text
    assert re.findall(r'data-block="(\w+)"', html) == ["khoi_1"]


# --- invites ----------------------------------------------------------------------------------


def test_an_admin_issues_an_invite_shown_once_and_redeemable(pages: Pages) -> None:
    csrf = pages.login("boss")
    response = pages.client.post(
        "/staff/invites", data={"csrf_token": csrf, "role": "cadre", "blocks": ["khoi_3"], "hours": "24"}
    )
    assert response.status_code == 200
    code = re.search(r'<code id="invite-code">([A-Za-z0-9_-]{22})</code>', response.text).group(1)  # type: ignore[union-attr]
    assert "t.me/" not in response.text  # the bot's username is unknown here
    assert code not in pages.client.get("/staff/invites").text
    staff = invites.redeem(pages.db, code, 777)
    assert staff.role == "cadre" and staff.blocks == ["khoi_3"]
    with pytest.raises(InviteError):
        invites.redeem(pages.db, code, 778)


def test_invites_are_for_admins_only_and_need_the_token(pages: Pages) -> None:
    data = {"role": "cadre", "blocks": ["khoi_1"], "hours": "24"}
    for user in ("khoi1", "lan"):
        csrf = pages.login(user)
        assert pages.client.get("/staff/invites").status_code == 403
        assert pages.client.post("/staff/invites", data={**data, "csrf_token": csrf}).status_code == 403
        assert 'href="/staff/invites"' not in pages.client.get("/staff/queue").text
    pages.login("boss")
    assert pages.client.post("/staff/invites", data=data).status_code == 403
    bad = pages.client.post(
        "/staff/invites",
        data={**data, "hours": "0", "csrf_token": token(pages.client.get("/staff/invites").text)},
    )
    assert bad.status_code == 422 and "Thời hạn của mã mời cần từ 1 đến 720 giờ." in bad.text
    with pages.db.session() as session:
        assert session.scalar(select(func.count()).select_from(InviteCode)) == 0


def test_every_refusal_of_the_pages_has_a_vietnamese_text() -> None:
    from bot.staff import campaigns_web

    source = Path(campaigns_web.__file__).read_text(encoding="utf-8")
    codes = set(re.findall(r'(?:FormError|CampaignError|Forbidden)\("([a-z_]+)"', source))
    texts = campaigns_web.texts()
    assert codes and codes <= set(texts["errors"])
    assert set(campaigns_web.DONE.values()) <= set(texts["notices"])
    assert set(campaigns_web.TAG_FILTERS) <= set(texts["tags"])
