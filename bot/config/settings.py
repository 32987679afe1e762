"""Process settings: everything secret or machine-specific comes from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Environment variables (and a `.env` file if present); `.env.example` lists them."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(8000, alias="PORT", ge=1, le=65535)
    database_url: str = Field("", alias="DATABASE_URL")
    ward_file: Path = Field(PROJECT_ROOT / "settings" / "ward.yml", alias="WARD_FILE")
    var_dir: Path = Field(PROJECT_ROOT / "var", alias="VAR_DIR")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    rasa_port: int = Field(5005, alias="RASA_PORT", ge=1, le=65535)
    rasa_url: str = Field("", alias="RASA_URL")
    rasa_timeout: float = Field(10.0, alias="RASA_TIMEOUT", gt=0)
    rasa_model: Path = Field(PROJECT_ROOT / "models" / "ward.tar.gz", alias="RASA_MODEL")
    rasa_tracker_url: str = Field("", alias="RASA_TRACKER_URL")

    telegram_bot_token: str = Field("", alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_url: str = Field("", alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: str = Field("", alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_base_url: str = Field("", alias="TELEGRAM_API_BASE_URL")
    # staff group on Telegram: new/cancelled/moved bookings, no personal data (bot/appointments/notify.py)
    staff_telegram_chat_id: str = Field("", alias="STAFF_TELEGRAM_CHAT_ID")

    # --- Zalo Official Account (bot/channels/zalo) ---
    zalo_app_id: str = Field("", alias="ZALO_APP_ID")
    zalo_oa_secret_key: str = Field("", alias="ZALO_OA_SECRET_KEY")
    zalo_access_token: str = Field("", alias="ZALO_ACCESS_TOKEN")
    zalo_refresh_token: str = Field("", alias="ZALO_REFRESH_TOKEN")
    zalo_app_secret: str = Field("", alias="ZALO_APP_SECRET")
    zalo_api_base_url: str = Field("https://openapi.zalo.me", alias="ZALO_API_BASE_URL")
    zalo_oauth_base_url: str = Field("https://oauth.zaloapp.com", alias="ZALO_OAUTH_BASE_URL")
    zalo_proactive: bool = Field(False, alias="ZALO_PROACTIVE")
    # --- end Zalo ---

    secret_key: str = Field("", alias="SECRET_KEY")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"DATABASE_URL is not a database URL: {exc}") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("DATABASE_URL must be sqlite:// or postgresql://")
        return value

    @model_validator(mode="after")
    def _check_webhook_secret(self) -> Settings:
        """Without the secret anyone could post forged updates to the webhook."""
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_WEBHOOK_URL")
        return self

    @property
    def zalo_enabled(self) -> bool:
        """The Zalo channel is on when the app id and the OA secret key are set."""
        return bool(self.zalo_app_id and self.zalo_oa_secret_key)

    @property
    def effective_database_url(self) -> str:
        """The embedded default is a SQLite file under var/."""
        return self.database_url or f"sqlite:///{self.var_dir / 'ward.db'}"

    @property
    def effective_rasa_url(self) -> str:
        return (self.rasa_url or f"http://127.0.0.1:{self.rasa_port}").rstrip("/")

    @property
    def effective_tracker_url(self) -> str:
        return self.rasa_tracker_url or f"sqlite:///{self.var_dir / 'rasa-tracker.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
