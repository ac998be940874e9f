"""Formats: how node trees become bytes. Only the native format lives here so far."""
