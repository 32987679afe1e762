"""Campaign photos: checked, stored content-addressed under <var dir>/uploads, and the Telegram
file_id cache.

A photo is only JPEG, PNG or WebP (checked by the file's magic bytes, whatever its name or
declared type says) and at most 5 MB. It is stored as `<sha256 of the bytes>.<ext>` (the same
image uploaded twice is one file), and that name is the reference a campaign keeps
(`Campaign.photo`) and the outbox message carries (`message["photo"]`). Telegram answers the
first upload with a file_id; it is cached in memory and on the campaigns with that photo
(`Campaign.photo_file_id`), so the next sends (and the next app process) send the file_id
instead of the bytes. A file_id belongs to one bot: the cache is keyed by the bot's token.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

from sqlalchemy import select, update

from bot.campaigns.errors import CampaignError
from bot.campaigns.models import Campaign
from bot.storage.db import Database

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
UPLOADS = "uploads"
NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def kind_of(data: bytes) -> str | None:
    """ "jpg", "png" or "webp" from the magic bytes; None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check(data: bytes) -> str:
    """The photo's extension, or CampaignError photo_too_big / photo_bad_type / photo_empty."""
    if not data:
        raise CampaignError("photo_empty")
    if len(data) > MAX_BYTES:
        raise CampaignError("photo_too_big", str(MAX_BYTES // (1024 * 1024)))
    kind = kind_of(data)
    if kind is None:
        raise CampaignError("photo_bad_type")
    return kind


def uploads_dir(var_dir: Path) -> Path:
    return Path(var_dir) / UPLOADS


def store(var_dir: Path, data: bytes) -> str:
    """Check and store the bytes; returns the photo's name ("<sha256>.<ext>")."""
    kind = check(data)
    name = f"{hashlib.sha256(data).hexdigest()}.{kind}"
    folder = uploads_dir(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)  # atomic: a reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    log.info("campaign photo stored (%s, %d bytes)", kind, len(data))
    return name


def discard_unused(db: Database, var_dir: Path, name: str) -> None:
    """Remove a stored file no campaign refers to (its campaign was refused after the upload)."""
    with db.session() as session:
        used = session.scalar(select(Campaign.id).where(Campaign.photo == name).limit(1))
    path = path_of(var_dir, name)
    if used is None and path is not None:
        path.unlink(missing_ok=True)


def path_of(var_dir: Path, name: str | None) -> Path | None:
    """The stored file of a photo name, or None (a name not of ours, or no such file)."""
    if not name or not NAME.match(name):
        return None
    path = uploads_dir(var_dir) / name
    return path if path.is_file() else None


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


# --- Telegram file ids ------------------------------------------------------------------------------

_file_ids: dict[tuple[str, str], str] = {}  # (bot token, photo name) -> file_id
_MAX_CACHED = 1000


def _bot_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]  # never keep the token itself around


def cached_file_id(db: Database | None, token: str, name: str) -> str | None:
    """A file_id Telegram gave for this photo (this bot), from memory or the campaigns table."""
    found = _file_ids.get((_bot_key(token), name))
    if found is not None or db is None:
        return found
    with db.session() as session:
        found = session.scalar(
            select(Campaign.photo_file_id)
            .where(Campaign.photo == name, Campaign.photo_file_id.is_not(None))
            .order_by(Campaign.id.desc())
            .limit(1)
        )
    if found:
        remember(None, token, name, found)
    return found


def remember(db: Database | None, token: str, name: str, file_id: str) -> None:
    """Keep the file_id Telegram returned (memory; and on the campaigns with this photo)."""
    if len(_file_ids) >= _MAX_CACHED:
        _file_ids.clear()
    _file_ids[(_bot_key(token), name)] = file_id
    if db is not None:
        with db.session() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.photo == name, Campaign.photo_file_id.is_(None))
                .values(photo_file_id=file_id)
            )


def forget(db: Database | None, token: str, name: str) -> None:
    """Telegram refused the cached file_id (another bot, expired): upload again next time."""
    _file_ids.pop((_bot_key(token), name), None)
    if db is not None:
        with db.session() as session:
            session.execute(update(Campaign).where(Campaign.photo == name).values(photo_file_id=None))
