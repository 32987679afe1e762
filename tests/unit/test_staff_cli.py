"""`python -m bot staff ...` and the /staff routes in the real app."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from rasa_sdk.executor import ActionExecutor

from bot.cli import main
from bot.config.settings import PROJECT_ROOT, Settings
from bot.services import Services
from bot.staff import accounts
from bot.staff.models import AuditLog
from bot.web.app import create_app


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return tmp_path


def staff(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exc:
        main(["staff", *args])
    return int(exc.value.code or 0)


def services() -> Services:
    return Services.build(Settings())


def test_help_lists_the_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "staff", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0
    for name in ("create", "list", "set-role", "set-blocks", "deactivate", "reset-password"):
        assert name in out.stdout


def test_create_list_change_and_deactivate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = staff(
        monkeypatch, "create", "Lan", "--name", "Nguyễn Thị Lan", "--password-stdin", stdin="mat-khau-1\n"
    )
    assert code == 0
    assert "created lan (officer)" in capsys.readouterr().out
    db = services().db
    assert accounts.authenticate(db, "lan", "mat-khau-1").staff is not None
    assert staff(monkeypatch, "set-role", "lan", "cadre") == 0
    assert staff(monkeypatch, "set-blocks", "lan", "khoi_1,khoi_2") == 0
    assert staff(monkeypatch, "set-blocks", "lan", "khoi_99") == 2
    assert "unknown_block: khoi_99" in capsys.readouterr().err
    assert staff(monkeypatch, "list") == 0
    assert "lan\tcadre\tkhoi_1,khoi_2\tactive\tNguyễn Thị Lan" in capsys.readouterr().out
    assert staff(monkeypatch, "reset-password", "lan", "--password-stdin", stdin="mat-khau-2\n") == 0
    assert accounts.authenticate(db, "lan", "mat-khau-1").staff is None
    assert accounts.authenticate(db, "lan", "mat-khau-2").staff is not None
    assert staff(monkeypatch, "deactivate", "lan") == 0
    assert accounts.authenticate(db, "lan", "mat-khau-2").staff is None
    with db.session() as session:
        whats = [row.what for row in session.query(AuditLog).order_by(AuditLog.id)]
    assert whats[0] == "create staff lan role=officer"
    assert "deactivate lan" in whats and all("mat-khau" not in what for what in whats)


def test_refusals_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert staff(monkeypatch, "create", "lan", "--password-stdin", stdin="short\n") == 2
    assert "weak_password" in capsys.readouterr().err
    assert staff(monkeypatch, "create", "lan", "--password-stdin", stdin="long-enough\n") == 0
    assert staff(monkeypatch, "create", "lan", "--password-stdin", stdin="long-enough\n") == 2
    assert "username_taken" in capsys.readouterr().err
    assert staff(monkeypatch, "set-role", "khong-co", "admin") == 2


def test_create_prompts_twice_with_getpass(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["mat-khau-1", "mat-khau-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert staff(monkeypatch, "create", "lan", "--role", "admin") == 0
    assert accounts.authenticate(services().db, "lan", "mat-khau-1").staff.role == "admin"
    answers = iter(["mat-khau-1", "khac"])
    assert staff(monkeypatch, "reset-password", "lan") == 2


def test_the_app_serves_the_staff_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.web.app.build_executor", ActionExecutor)
    app = create_app(Settings(VAR_DIR=tmp_path, DATABASE_URL="", TELEGRAM_BOT_TOKEN=""))
    client = TestClient(app, follow_redirects=False)  # no lifespan: the login form needs no database
    assert "Đăng nhập cán bộ" in client.get("/staff/login").text
    assert client.get("/staff/queue").headers["location"].startswith("/staff/login")
