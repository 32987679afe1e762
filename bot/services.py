"""The app's shared services, built once at start and reached by the custom actions.

Actions run inside the app process (the action endpoint is served by the app),
so they use the same knowledge base, settings and database as the channels.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config.settings import PROJECT_ROOT, Settings
from bot.config.ward import Ward, load_ward
from bot.knowledge.kb import KnowledgeBase
from bot.storage.db import Database

_services: Services | None = None


@dataclass
class Services:
    settings: Settings
    ward: Ward
    kb: KnowledgeBase
    db: Database

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Load and validate everything; raises with a one-line reason on bad config."""
        ward = load_ward(settings.ward_file)
        kb = KnowledgeBase(PROJECT_ROOT / "faq")
        db = Database(settings.effective_database_url)
        return cls(settings=settings, ward=ward, kb=kb, db=db)


def set_services(services: Services | None) -> None:
    global _services
    _services = services


def get_services() -> Services:
    """The shared services; picks up edits to faq/ on the way (cheap, rate-limited)."""
    if _services is None:
        raise RuntimeError("services are not initialised (the app has not started)")
    _services.kb.refresh_if_changed()
    return _services
