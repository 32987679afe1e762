"""Rasa custom actions, served by the app's action endpoint (bot.web.actions)."""
