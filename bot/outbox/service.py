"""Outbox operations: enqueue (idempotent), cancel, counts, and the worker's claim/finish.

Claiming (queued → sending) on PostgreSQL is one transaction of two statements:

    SELECT id FROM outbox WHERE status='queued' AND not_before <= :now AND channel IN (...)
    ORDER BY not_before, id LIMIT :n FOR UPDATE SKIP LOCKED;
    UPDATE outbox SET status='sending', claimed_at=:now, claimed_by=:worker
    WHERE id IN (:locked ids) RETURNING ...;

`SKIP LOCKED` lets several workers take disjoint batches without waiting on each
other. On SQLite (>= 3.35 for RETURNING) it is one statement,
`UPDATE ... WHERE status='queued' AND id IN (SELECT ... LIMIT :n) RETURNING ...`:
SQLite has one writer at a time, so the UPDATE is atomic, and a second worker
waits (busy_timeout) and then sees those rows as no longer queued.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.outbox.models import STATUSES, OutboxMessage
from bot.storage.db import Database, UTCDateTime, utcnow

UNIQUE_KEY = ("kind", "ref", "channel", "external_id")


def _insert(db: Database):  # the dialect-specific Insert (on_conflict_do_nothing)
    return pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert


def enqueue(
    db: Database,
    channel: str,
    external_id: str,
    message: dict,
    *,
    kind: str,
    ref: str | None = None,
    not_before: dt.datetime | None = None,
) -> int:
    """Queue one message for one recipient; returns the outbox row id.

    Idempotent on (kind, ref, channel, external_id): a second call returns the
    first row's id and changes nothing. With ref=None there is no deduplication.
    """
    values = {
        "channel": channel,
        "external_id": external_id,
        "message": message,
        "kind": kind,
        "ref": ref,
        "status": "queued",
        "reason": "",
        "attempts": 0,
        "not_before": not_before or utcnow(),
        "created_at": utcnow(),
    }
    statement = (
        _insert(db)(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(UNIQUE_KEY))
        .returning(OutboxMessage.id)
    )
    with db.session() as session:
        row_id = session.scalar(statement)
        if row_id is not None:
            return row_id
        return session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.kind == kind,
                OutboxMessage.ref == ref,
                OutboxMessage.channel == channel,
                OutboxMessage.external_id == external_id,
            )
        ).one()


def enqueue_many(
    db: Database,
    recipients: Iterable[tuple[str, str]],
    message: dict,
    *,
    kind: str,
    ref: str | None = None,
    not_before: dt.datetime | None = None,
    chunk: int = 1000,
) -> int:
    """Queue the same message for many (channel, external_id); returns how many rows were new."""
    now = utcnow()
    base = {
        "message": message,
        "kind": kind,
        "ref": ref,
        "status": "queued",
        "reason": "",
        "attempts": 0,
        "not_before": not_before or now,
        "created_at": now,
    }
    rows = [{**base, "channel": c, "external_id": e} for c, e in recipients]
    statement = (
        _insert(db)(OutboxMessage.__table__)
        .on_conflict_do_nothing(index_elements=list(UNIQUE_KEY))
        .returning(OutboxMessage.__table__.c.id)
    )
    added = 0
    with db.session() as session:
        connection = session.connection()
        for start in range(0, len(rows), chunk):  # executemany, batched into multi-row INSERTs
            added += len(connection.execute(statement, rows[start : start + chunk]).all())
    return added


def cancel(db: Database, kind: str, ref: str) -> int:
    """Cancel the rows of (kind, ref) still queued; returns how many. Rows in flight are not stopped."""
    with db.session() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == kind, OutboxMessage.ref == ref, OutboxMessage.status == "queued")
            .values(status="cancelled", reason="cancelled")
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


HELD_UNTIL = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # not_before of held rows: never due


def hold(db: Database, kind: str, ref: str) -> int:
    """Hold the queued rows of (kind, ref) (e.g. a paused campaign); returns how many."""
    with db.session() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == kind, OutboxMessage.ref == ref, OutboxMessage.status == "queued")
            .values(not_before=HELD_UNTIL, reason="held")
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


def release(db: Database, kind: str, ref: str, not_before: dt.datetime | None = None) -> int:
    """Make held rows of (kind, ref) due again (at `not_before`, default now); returns how many."""
    with db.session() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.kind == kind,
                OutboxMessage.ref == ref,
                OutboxMessage.status == "queued",
                OutboxMessage.not_before >= HELD_UNTIL,
            )
            .values(not_before=not_before or utcnow(), reason="")
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


def counts(db: Database, kind: str, ref: str | None = None) -> dict[str, int]:
    """Rows per status for a kind (and ref), every status present: for reports."""
    query = select(OutboxMessage.status, func.count()).where(OutboxMessage.kind == kind)
    if ref is not None:
        query = query.where(OutboxMessage.ref == ref)
    with db.session() as session:
        found = dict(session.execute(query.group_by(OutboxMessage.status)).tuples().all())
    return {status: found.get(status, 0) for status in STATUSES}


# --- the worker's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds in status "sending"."""

    id: int
    channel: str
    external_id: str
    message: dict
    kind: str
    ref: str | None
    attempts: int
    not_before: dt.datetime


@dataclass(frozen=True)
class Outcome:
    """What to write back for a claimed row. status "queued" puts it back (not_before applies)."""

    id: int
    status: str
    reason: str = ""
    attempted: bool = True
    not_before: dt.datetime | None = None
    sent_at: dt.datetime | None = None


def claim(db: Database, worker: str, limit: int, now: dt.datetime, channels: Sequence[str]) -> list[Claimed]:
    """Take up to `limit` due rows of these channels for this worker (status queued → sending)."""
    if not channels or limit <= 0:
        return []
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == "queued",
            OutboxMessage.not_before <= now,
            OutboxMessage.channel.in_(list(channels)),
        )
        .order_by(OutboxMessage.not_before, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim_rows = (
        update(OutboxMessage)
        .values(status="sending", claimed_at=now, claimed_by=worker)
        .returning(
            OutboxMessage.id,
            OutboxMessage.channel,
            OutboxMessage.external_id,
            OutboxMessage.message,
            OutboxMessage.kind,
            OutboxMessage.ref,
            OutboxMessage.attempts,
            OutboxMessage.not_before,
        )
        .execution_options(synchronize_session=False)
    )
    with db.session() as session:
        if db.engine.dialect.name == "postgresql":
            # Lock first, then update the locked ids, in one transaction. Not `id IN (subquery
            # ... SKIP LOCKED)`: PostgreSQL may rescan that subquery per row, and each rescan skips
            # the rows just updated and returns the next ones, claiming far more than `limit`.
            ids = session.scalars(due).all()
            if not ids:
                return []
            statement = claim_rows.where(OutboxMessage.id.in_(ids))
        else:
            statement = claim_rows.where(
                OutboxMessage.status == "queued", OutboxMessage.id.in_(due.scalar_subquery())
            )
        rows = [Claimed(*row) for row in session.execute(statement).tuples().all()]
    rows.sort(key=lambda r: (r.not_before, r.id))
    return rows


_FINISH = (
    update(OutboxMessage.__table__)
    .where(
        OutboxMessage.__table__.c.id == bindparam("b_id"),
        OutboxMessage.__table__.c.status == "sending",
        OutboxMessage.__table__.c.claimed_by == bindparam("b_worker"),
    )
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        attempts=OutboxMessage.__table__.c.attempts + bindparam("b_inc"),
        not_before=bindparam("b_not_before", type_=UTCDateTime()),
        sent_at=bindparam("b_sent_at", type_=UTCDateTime()),
        claimed_at=None,
        claimed_by=None,
    )
)


def finish(db: Database, worker: str, claimed: Sequence[Claimed], outcomes: Iterable[Outcome]) -> int:
    """Write outcomes back in one transaction; only rows this worker still holds are changed."""
    by_id = {row.id: row for row in claimed}
    params = [
        {
            "b_id": o.id,
            "b_worker": worker,
            "b_status": o.status,
            "b_reason": o.reason[:200],
            "b_inc": 1 if o.attempted else 0,
            "b_not_before": o.not_before or by_id[o.id].not_before,
            "b_sent_at": o.sent_at,
        }
        for o in outcomes
    ]
    if not params:
        return 0
    with db.engine.begin() as connection:
        return connection.execute(_FINISH, params).rowcount


def recover_stale(db: Database, now: dt.datetime, lease: dt.timedelta, max_attempts: int) -> int:
    """Put rows stuck in "sending" past the lease (a crashed worker) back in the queue.

    Each recovery counts as an attempt (the send may have happened), so a message
    that crashes its worker every time ends "failed" instead of looping. Returns
    how many rows were re-queued.
    """
    stale = (OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - lease)
    released = {"claimed_at": None, "claimed_by": None, "attempts": OutboxMessage.attempts + 1}
    with db.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(*stale, OutboxMessage.attempts + 1 >= max_attempts)
            .values(status="failed", reason="worker lost while sending (lease expired)", **released)
            .execution_options(synchronize_session=False)
        )
        result = session.execute(
            update(OutboxMessage)
            .where(*stale)
            .values(status="queued", reason="re-queued after lease expired", **released)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount
