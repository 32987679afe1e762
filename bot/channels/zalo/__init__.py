"""The Zalo Official Account channel (API v3): webhook in, consultation messages out."""
