"""Subscriptions to the ward's notices, per channel user, with consent and block (khối)."""
