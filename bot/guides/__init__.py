"""Step-by-step guides (faq/guides/): progress per channel user, kept across sessions."""
