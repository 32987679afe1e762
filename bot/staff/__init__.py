"""The desk staff's side: accounts (CLI and admin page), login, queue pages, CSV, audit log.

- `models`   — StaffUser, AuditLog (migration 0007_staff)
- `accounts` — argon2 hashes, login with lockout, roles and blocks, audit rows
- `auth`     — signed session cookie, CSRF tokens, STAFF_* settings
- `queue`    — the day's queue, search, summary, CSV (reads bot.appointments)
- `web`      — the /staff pages (`staff_router`)
- `cli`      — `python -m bot staff ...`
"""
