"""Refusals of the campaign service; `code` is stable (Vietnamese texts in faq/campaigns.yml)."""

from __future__ import annotations


class CampaignError(ValueError):
    """A refused campaign action (bad input or a state that does not allow it)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class Forbidden(CampaignError):
    """The staff member may not do this (role, or blocks outside their own)."""


class InviteError(CampaignError):
    """An invite code refused: invalid (forged), expired or already used."""
