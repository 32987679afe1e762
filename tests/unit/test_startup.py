"""Bad configuration stops the app at start with one line naming the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.appserver import ROOT


def run_bot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "WARD_FILE"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_accepts_the_sample_configuration(tmp_path: Path) -> None:
    result = run_bot("check", VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_invalid_ward_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    ward = tmp_path / "ward.yml"
    text = (ROOT / "settings" / "ward.yml").read_text(encoding="utf-8")
    ward.write_text(text.replace('phone: "0238 3800 000"', 'phone: "gọi cho tôi"'), encoding="utf-8")
    result = run_bot("run", WARD_FILE=str(ward), VAR_DIR=str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "field 'phone'" in lines[0]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://user@host/db", "DATABASE_URL must be sqlite:// or postgresql://"),
        ("not a url", "DATABASE_URL"),
        ("postgresql://nobody:secret@127.0.0.1:1/ward", "cannot open DATABASE_URL"),
    ],
)
def test_invalid_database_url_is_refused(tmp_path: Path, url: str, needle: str) -> None:
    result = run_bot("run", DATABASE_URL=url, VAR_DIR=str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert "secret" not in result.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"STAFF_MAX_FAILED_LOGINS": "0"}, "invalid setting STAFF_MAX_FAILED_LOGINS"),
        ({"STAFF_SESSION_HOURS": "soon"}, "invalid setting STAFF_SESSION_HOURS"),
        ({"OUTBOX_RATE": "-1"}, "invalid setting OUTBOX_RATE"),
        ({"TELEGRAM_WEBHOOK_URL": "https://ward.example/telegram"}, "TELEGRAM_WEBHOOK_SECRET is required"),
    ],
)
def test_bad_part_settings_refused_in_one_line(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    result = run_bot("check", VAR_DIR=str(tmp_path), **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
