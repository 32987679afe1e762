"""The Telegram channel (python-telegram-bot): on when TELEGRAM_BOT_TOKEN is set."""

from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.sender import TelegramSender

__all__ = ["TelegramChannel", "TelegramSender"]
