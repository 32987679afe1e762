"""Campaign reports for the staff on Telegram: pushed once per finished run, shown on request.

A run is finished when none of its outbox rows is queued (held included) or sending. Its
report goes to the creator's linked Telegram account through the outbox, kind
"staff_report", ref "<campaign id>:<run_no>": the outbox's unique key makes it once per run
however often the check runs (it runs in the campaigns:maintain job, every minute).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select

from bot.campaigns import delivery
from bot.campaigns.models import Campaign, CampaignPress, CampaignRun
from bot.config.settings import PROJECT_ROOT
from bot.outbox import service as outbox
from bot.outbox.models import OutboxMessage
from bot.staff.models import StaffUser
from bot.staff.tgtexts import text, texts
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

KIND = "staff_report"
LOOKBACK = dt.timedelta(days=14)
PENDING = ("queued", "sending")


def run_counts(db: Database, campaign_id: int, run_no: int) -> dict[str, int]:
    """Rows of one run by status, plus recipients (all rows) and the campaign's presses."""
    by_status = outbox.counts(db, delivery.KIND, delivery.ref(campaign_id, run_no))
    with db.session() as session:
        presses = session.scalar(select(func.count()).where(CampaignPress.campaign_id == campaign_id))
    result = {key: by_status.get(key, 0) for key in ("sent", "failed", "blocked", "skipped", "cancelled")}
    result["recipients"] = sum(by_status.values())
    result["queued"] = sum(by_status.get(key, 0) for key in PENDING)
    result["presses"] = presses or 0
    return result


def report_message(title: str, status: str, report: dict[str, Any]) -> dict:
    """service.report's counts as the chat message /baocao answers with."""
    status_name = _status_name(status)
    values = {**report, "id": report["campaign_id"], "title": title, "status": status_name}
    return {"text": text("report", **values), "buttons": []}


def _status_name(status: str) -> str:
    return str(campaign_texts().get("statuses", {}).get(status, status))


def campaign_texts() -> dict[str, Any]:
    """faq/campaigns.yml: status and schedule names, the service's refusals."""
    return texts(PROJECT_ROOT / "faq" / "campaigns.yml")


def _finished_runs(db: Database, now: dt.datetime) -> list[tuple[int, int, str, int]]:
    """(campaign id, run_no, title, creator's Telegram id) of enqueued runs without a report yet."""
    with db.session() as session:
        rows = session.execute(
            select(CampaignRun.campaign_id, CampaignRun.run_no, Campaign.title, StaffUser.telegram_user_id)
            .join(Campaign, Campaign.id == CampaignRun.campaign_id)
            .join(StaffUser, StaffUser.id == Campaign.created_by)
            .where(
                CampaignRun.enqueued_at.is_not(None),
                CampaignRun.started_at >= now - LOOKBACK,
                StaffUser.active.is_(True),
                StaffUser.telegram_user_id.is_not(None),
            )
        ).all()
        reported = set(
            session.scalars(
                select(OutboxMessage.ref).where(
                    OutboxMessage.kind == KIND,
                    OutboxMessage.created_at >= now - LOOKBACK - dt.timedelta(days=1),
                )
            )
        )
    runs = []
    for campaign_id, run_no, title, telegram_id in rows:
        if delivery.ref(campaign_id, run_no) in reported:
            continue
        runs.append((campaign_id, run_no, title, int(telegram_id)))
    return runs


def push_finished(db: Database, now: dt.datetime | None = None) -> int:
    """Enqueue the report of every finished run not reported yet; returns how many."""
    now = now or utcnow()
    pushed = 0
    for campaign_id, run_no, title, telegram_id in _finished_runs(db, now):
        counts = run_counts(db, campaign_id, run_no)
        if counts["queued"]:
            continue
        values = {**counts, "id": campaign_id, "title": title, "run": run_no}
        message = {"text": text("report_run", **values), "buttons": []}
        outbox.enqueue(
            db, "telegram", str(telegram_id), message, kind=KIND, ref=delivery.ref(campaign_id, run_no)
        )
        log.info("campaign %d run %d: report queued for its creator", campaign_id, run_no)
        pushed += 1
    return pushed
