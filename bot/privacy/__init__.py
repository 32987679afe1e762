"""A citizen's "xóa dữ liệu của tôi": what the app deletes, and the Rasa conversation history.

`delete_citizen_data` (app database, one channel user):
- appointments: upcoming ones cancelled (seats freed), name, phone, note, the chat id and the
  idempotency key cleared on all of them (`bot.appointments.service.delete_my_data`); the
  code, procedure, counter and time stay, without anyone attached, for the desk's statistics;
- the subscription to the ward's notices (block, consent text and time) and the citizen's tags;
- guide progress;
- a web chat user's messages waiting in the web inbox.
Kept: the citizen row itself (channel, chat id, first and last message time), which every
channel re-creates on the next message, and rows other features keep about sent messages.

`forget_conversation` deletes the sender's events from Rasa's SQL tracker store. Rasa's HTTP
API cannot do it: `PUT /conversations/{id}/tracker/events` builds a tracker from the events
sent and saves it, and the SQL tracker store's save only appends the events it does not
have yet, so old events stay. It must run after the turn (the app calls it once Rasa has
answered), otherwise Rasa would write the turn's whole tracker back when it saves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import create_engine, delete, text
from sqlalchemy.exc import SQLAlchemyError

from bot.appointments import service as appointments
from bot.channels.web_inbox import WebInboxMessage
from bot.guides.models import GuideProgress
from bot.storage.db import Database
from bot.subscriptions.models import CitizenTag, Subscription
from bot.subscriptions.service import citizen_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deleted:
    appointments: int
    subscriptions: int
    tags: int
    guides: int
    web_inbox: int = 0


def delete_citizen_data(db: Database, channel: str, external_id: str) -> Deleted:
    """Delete what the app keeps about this channel user (see the module docstring)."""
    anonymised = appointments.delete_my_data(db, channel, external_id)
    with db.session() as session:
        cid = citizen_id(session, channel, external_id, create=False)
        counts = [0, 0, 0]
        if cid is not None:
            for i, model in enumerate((Subscription, CitizenTag, GuideProgress)):
                result = session.execute(delete(model).where(model.citizen_id == cid))
                counts[i] = result.rowcount or 0
        waiting = 0
        if channel == "web":
            found = session.execute(delete(WebInboxMessage).where(WebInboxMessage.external_id == external_id))
            waiting = found.rowcount or 0
    deleted = Deleted(anonymised, *counts, web_inbox=waiting)
    log.info(
        "citizen data deleted on %s: %d appointments, %d subscriptions, %d tags, %d guides",
        channel,
        deleted.appointments,
        deleted.subscriptions,
        deleted.tags,
        deleted.guides,
    )
    return deleted


def forget_conversation(tracker_url: str, sender_id: str) -> int:
    """Delete the sender's events from Rasa's SQL tracker store; returns how many (0 on error)."""
    engine = create_engine(tracker_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(
                text("DELETE FROM events WHERE sender_id = :sender"), {"sender": sender_id}
            )
            count = result.rowcount or 0
    except SQLAlchemyError as exc:
        log.warning("conversation history not deleted: %s", type(exc).__name__)
        return 0
    finally:
        engine.dispose()
    log.info("conversation history deleted: %d events", count)
    return count
