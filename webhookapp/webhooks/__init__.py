"""Webhook pages: the list, details, edit, enable/disable, delete, and the creation wizard."""
