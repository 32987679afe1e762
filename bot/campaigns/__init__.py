"""Reminder campaigns: block cadres broadcast to the subscribed citizens of their blocks.

- `models`    — Campaign, CampaignRun, CampaignPress, InviteCode (migration 0008_campaigns)
- `service`   — create / preview / confirm / pause / resume / cancel / report, with the scope
                rules (cadre: own blocks; admin: whole ward; officer: none) checked on every action
- `audience`  — who gets a campaign, resolved at send time from bot.subscriptions
- `delivery`  — runs (one outbox row per recipient, kind="campaign", ref="<id>:<run_no>"),
                relative reminder events, and the outbox filter (unsubscribed, paused, cancelled)
- `jobs`      — APScheduler jobs (SQLAlchemy job store: they survive restarts)
- `invites`   — one-time, expiring invite codes that link a cadre's Telegram account
See docs/campaigns.md.
"""
