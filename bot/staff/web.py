"""The desk staff's pages under /staff: login, today's queue, search, status buttons, CSV, summary, admin.

Server-rendered (Jinja2, every value auto-escaped; no JavaScript, and a Content-Security-Policy
that allows none). Pages without a session redirect to the login form; POSTs without a session
or without the session's CSRF token get 403 and change nothing. Cadres never see names or phone
numbers; every page or export that shows them writes an audit row.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.appointments.models import STATUSES
from bot.appointments.service import CODE_ALPHABET, CODE_LENGTH, NotFound, normalize_code, set_status
from bot.config.settings import PROJECT_ROOT
from bot.services import Services
from bot.staff import accounts, queue
from bot.staff.accounts import Staff, StaffError
from bot.staff.auth import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    Signer,
    StaffSettings,
    same_token,
)
from bot.staff.models import ROLES
from bot.storage.db import utcnow

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEXTS_FILE = PROJECT_ROOT / "faq" / "staff.yml"
DESK_STATUSES = ("arrived", "served", "no_show")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=2)
def texts(path: Path = TEXTS_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _safe_next(target: str) -> str:
    """Only our own pages: no open redirect to another site."""
    if target.startswith("/staff") and not target.startswith("//") and "\\" not in target:
        return target
    return "/staff/queue"


def _parse_day(value: str, today: dt.date) -> tuple[dt.date, bool]:
    if not value:
        return today, True
    try:
        return dt.date.fromisoformat(value), True
    except ValueError:
        return today, False


def staff_router(services: Services, config: StaffSettings | None = None) -> APIRouter:
    config = config or StaffSettings()
    signer = Signer(services.settings.secret_key, int(config.session_hours * 3600))
    lockout = dt.timedelta(minutes=config.lockout_minutes)
    db, ward = services.db, services.ward
    tz = ward.tz
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined)
    css = (HERE / "static" / "staff.css").read_bytes()
    counter_names = {counter.id: counter.name for counter in ward.counters}
    procedure_ids = [p for counter in ward.counters for p in counter.procedures]
    procedure_names = {
        p: services.kb.procedures[p].title if p in services.kb.procedures else p for p in procedure_ids
    }
    block_names = {block.id: block.name for block in ward.blocks}
    router = APIRouter(prefix="/staff", include_in_schema=False)

    # --- helpers ---------------------------------------------------------------------

    def render(template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("me", None)
        values.setdefault("csrf", "")
        values.setdefault("notice", "")
        values.setdefault("error", "")
        html = env.get_template(template).render(
            t=texts(),
            ward=ward,
            counters=counter_names,
            procedures=procedure_names,
            blocks=block_names,
            **values,
        )
        return _secure(HTMLResponse(html, status_code=status))

    def error_text(code: str, detail: str = "") -> str:
        return str(texts()["errors"].get(code, code)).replace("{detail}", detail)

    def notice_text(code: str) -> str:
        return str(texts()["notices"].get(code, ""))

    def forbidden(request: Request, me: Staff | None = None, code: str = "forbidden") -> Response:
        return render("error.html", 403, me=me, message=error_text(code))

    def current(request: Request) -> tuple[Staff, Session] | None:
        session = signer.read_session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        staff = accounts.get_user(db, session.user_id)
        if staff is None or not staff.active or staff.session_version != session.version:
            return None
        return staff, session

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _secure(RedirectResponse(f"/staff/login?{urlencode({'next': target})}", status_code=303))

    def posted(request: Request, token: str) -> tuple[Staff, Session] | Response:
        """A POST's signed-in officer, or 403 when there is no session or the CSRF token is wrong."""
        found = current(request)
        if found is None:
            return forbidden(request, code="session_expired")
        if not same_token(found[1].csrf, token):
            return forbidden(request, found[0], "csrf")
        return found

    def redirect(target: str) -> Response:
        return _secure(RedirectResponse(target, status_code=303))

    def cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=config.cookie_secure or request.url.scheme == "https",
        )

    def filters_of(request: Request) -> tuple[queue.Filters, bool]:
        params = request.query_params
        day, ok = _parse_day(params.get("date", ""), utcnow().astimezone(tz).date())
        counter = params.get("counter", "")
        procedure = params.get("procedure", "")
        status = params.get("status", "")
        return (
            queue.Filters(
                day=day,
                counter=counter if counter in counter_names else "",
                procedure=procedure if procedure in procedure_names else "",
                status=status if status in STATUSES else "",
            ),
            ok,
        )

    # --- static ----------------------------------------------------------------------

    @router.get("/static/staff.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # --- login / logout ----------------------------------------------------------------

    def login_page(request: Request, status: int = 200, error: str = "", notice: str = "") -> Response:
        cookie_value, token = signer.new_login_token()
        response = render(
            "login.html",
            status,
            csrf=token,
            error=error,
            notice=notice,
            next=_safe_next(request.query_params.get("next", "")),
        )
        cookie(response, request, LOGIN_COOKIE, cookie_value, 2 * 3600)
        return response

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if current(request) is not None:
            return redirect(_safe_next(request.query_params.get("next", "")))
        return login_page(request, notice=notice_text(request.query_params.get("n", "")))

    @router.post("/login")
    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        csrf_token: str = Form(""),
        next: str = Form("/staff/queue"),
    ) -> Response:
        if not signer.check_login_token(request.cookies.get(LOGIN_COOKIE), csrf_token):
            return forbidden(request, code="csrf")
        result = accounts.authenticate(db, username[:64], password[:512], config.max_failed_logins, lockout)
        if result.staff is None:
            if result.reason == "locked" and result.locked_until is not None:
                until = result.locked_until.astimezone(tz).strftime("%H:%M")
                return login_page(request, 429, error=error_text("locked", until))
            return login_page(request, 401, error=error_text("invalid_login"))
        staff = result.staff
        value, _ = signer.new_session(staff.id, staff.session_version)
        accounts.audit(db, staff, "login", "login")
        response = redirect(_safe_next(next))
        cookie(response, request, SESSION_COOKIE, value, signer.session_seconds)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    @router.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        found = posted(request, csrf_token)
        if isinstance(found, Response):
            return found
        staff = found[0]
        # ends this account's sessions everywhere: a copied cookie is useless after logout
        accounts.end_sessions(db, staff.id)
        accounts.audit(db, staff, "logout", "logout")
        response = redirect("/staff/login?n=logged_out")
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    # --- queue, search, status ----------------------------------------------------------

    @router.get("")
    @router.get("/")
    def home(request: Request) -> Response:
        return redirect("/staff/queue")

    @router.get("/queue")
    def queue_page(request: Request) -> Response:
        found = current(request)
        if found is None:
            return to_login(request)
        me, session = found
        filters, date_ok = filters_of(request)
        rows = queue.day_queue(db, filters, tz, me.sees_personal_data)
        if me.sees_personal_data:
            accounts.audit(db, me, "view", f"view appointments {filters.describe()}")
        params = {
            "date": filters.day.isoformat(),
            "counter": filters.counter,
            "procedure": filters.procedure,
            "status": filters.status,
        }
        query = urlencode({k: v for k, v in params.items() if v})
        return render(
            "queue.html",
            me=me,
            csrf=session.csrf,
            rows=rows,
            filters=filters,
            statuses=STATUSES,
            desk_statuses=DESK_STATUSES,
            today=utcnow().astimezone(tz).date(),
            export_url=f"/staff/export.csv?{query}",
            here=f"/staff/queue?{query}",
            notice=notice_text(request.query_params.get("n", "")) if date_ok else notice_text("bad_date"),
            search="",
            search_kind="",
        )

    @router.get("/search")
    def search_form(request: Request) -> Response:
        # searches are POSTed: phone numbers stay out of URLs and the desk browser's history
        return to_login(request) if current(request) is None else redirect("/staff/queue")

    @router.post("/search")
    def search_page(request: Request, q: str = Form(""), csrf_token: str = Form("")) -> Response:
        found = posted(request, csrf_token)
        if isinstance(found, Response):
            return found
        me, session = found
        text = q.strip()[:64]
        kind, rows = queue.search(db, text, tz, me.sees_personal_data)
        if me.sees_personal_data and kind:
            code = normalize_code(text)
            shown = code if len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) else "(not a code)"
            what = f"search code {shown}" if kind == "code" else "search phone"  # never the typed text
            accounts.audit(db, me, "search", f"{what} ({len(rows)} found)")
        return render(
            "queue.html",
            me=me,
            csrf=session.csrf,
            rows=rows,
            filters=None,
            statuses=STATUSES,
            desk_statuses=DESK_STATUSES,
            today=utcnow().astimezone(tz).date(),
            export_url="",
            here="",  # after a status change: back to that appointment's day
            search=text,
            search_kind=kind,
        )

    @router.post("/appointments/status")
    def change_status(
        request: Request,
        code: str = Form(""),
        status: str = Form(""),
        csrf_token: str = Form(""),
        next: str = Form("/staff/queue"),
    ) -> Response:
        found = posted(request, csrf_token)
        if isinstance(found, Response):
            return found
        me = found[0]
        if me.role not in ("admin", "officer") or status not in DESK_STATUSES:
            return forbidden(request, me)
        target = _safe_next(next)
        joiner = "&" if "?" in target else "?"
        try:
            booking = set_status(db, code[:16], status)
        except NotFound:
            return redirect(f"{target}{joiner}n=not_found")
        accounts.audit(db, me, "status", f"mark {status} {booking.code}")
        return redirect(f"{target}{joiner}n=status_changed")

    @router.get("/export.csv")
    def export(request: Request) -> Response:
        found = current(request)
        if found is None:
            return to_login(request)
        me = found[0]
        filters, _ = filters_of(request)
        personal = me.sees_personal_data
        rows = queue.day_queue(db, filters, tz, personal)
        headers = list(texts()["csv_headers"]) + (list(texts()["csv_personal_headers"]) if personal else [])
        body = queue.to_csv(rows, headers, personal, procedure_names, counter_names, texts()["statuses"])
        accounts.audit(db, me, "export", f"export csv {filters.describe()}")
        name = f"lich-hen-{filters.day.isoformat()}.csv"
        response = Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
        return _secure(response)

    @router.get("/summary")
    def summary_page(request: Request) -> Response:
        found = current(request)
        if found is None:
            return to_login(request)
        me, session = found
        today = utcnow().astimezone(tz).date()
        first, ok_first = _parse_day(request.query_params.get("from", ""), today)
        last, ok_last = _parse_day(request.query_params.get("to", ""), first)
        if last < first or (last - first).days > 366:
            last = first
        result = queue.summary(db, first, last, tz)
        return render(
            "summary.html",
            me=me,
            csrf=session.csrf,
            summary=result,
            statuses=STATUSES,
            notice="" if ok_first and ok_last else notice_text("bad_date"),
        )

    # --- admin ------------------------------------------------------------------------------

    def admin_page(
        me: Staff, session: Session, status: int = 200, error: str = "", notice: str = ""
    ) -> Response:
        return render(
            "admin.html",
            status,
            me=me,
            csrf=session.csrf,
            users=accounts.list_users(db),
            roles=ROLES,
            audit=accounts.recent_audit(db, 100),
            tz=tz,
            error=error,
            notice=notice,
        )

    @router.get("/admin")
    def admin(request: Request) -> Response:
        found = current(request)
        if found is None:
            return to_login(request)
        me, session = found
        if not me.is_admin:
            return forbidden(request, me)
        return admin_page(me, session, notice=notice_text(request.query_params.get("n", "")))

    def admin_post(request: Request, token: str) -> tuple[Staff, Session] | Response:
        found = posted(request, token)
        if isinstance(found, Response):
            return found
        if not found[0].is_admin:
            return forbidden(request, found[0])
        return found

    @router.post("/admin/users")
    def admin_create(
        request: Request,
        username: str = Form(""),
        display_name: str = Form(""),
        password: str = Form(""),
        role: str = Form(""),
        blocks: Annotated[list[str] | None, Form()] = None,
        telegram_user_id: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        found = admin_post(request, csrf_token)
        if isinstance(found, Response):
            return found
        me, session = found
        try:
            telegram = int(telegram_user_id) if telegram_user_id.strip() else None
        except ValueError:
            return admin_page(me, session, 422, error=error_text("invalid_telegram_id"))
        try:
            staff = accounts.create_user(
                db,
                username,
                display_name,
                password,
                role,
                (blocks or []) if role == "cadre" else [],
                set(block_names),
                telegram,
            )
        except StaffError as exc:
            return admin_page(me, session, 422, error=error_text(exc.code, exc.detail))
        accounts.audit(db, me, "admin", f"create staff {staff.username} role={staff.role}")
        return redirect("/staff/admin?n=user_created")

    @router.post("/admin/users/{username}")
    def admin_update(
        request: Request,
        username: str,
        role: str = Form(""),
        blocks: Annotated[list[str] | None, Form()] = None,
        active: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        found = admin_post(request, csrf_token)
        if isinstance(found, Response):
            return found
        me, session = found
        want_active = active == "1"
        if username == me.username and (role != "admin" or not want_active):
            return admin_page(me, session, 422, error=error_text("not_yourself"))
        try:
            staff = accounts.update_user(
                db,
                username,
                role=role,
                blocks=(blocks or []) if role == "cadre" else [],
                known_blocks=set(block_names),
                active=want_active,
            )
        except StaffError as exc:
            return admin_page(me, session, 422, error=error_text(exc.code, exc.detail))
        what = f"update staff {staff.username} role={staff.role} active={staff.active}"
        accounts.audit(db, me, "admin", f"{what} blocks={','.join(staff.blocks)}")
        return redirect("/staff/admin?n=user_updated")

    @router.post("/admin/users/{username}/password")
    def admin_password(
        request: Request, username: str, password: str = Form(""), csrf_token: str = Form("")
    ) -> Response:
        found = admin_post(request, csrf_token)
        if isinstance(found, Response):
            return found
        me, session = found
        try:
            staff = accounts.update_user(db, username, password=password)
        except StaffError as exc:
            return admin_page(me, session, 422, error=error_text(exc.code, exc.detail))
        accounts.audit(db, me, "admin", f"reset password {staff.username}")
        if staff.id == me.id:  # own password: sign in again
            return redirect("/staff/login")
        return redirect("/staff/admin?n=password_reset")

    # --- campaigns, Project 06 progress, invite codes (bot/staff/campaigns_web.py) ---
    from bot.staff.campaigns_web import Pages, add_campaign_routes

    add_campaign_routes(router, Pages(render, current, posted, to_login, redirect), services)
    # --- end campaigns ---

    return router
