"""RQ entry points only: job functions that take ids, and the worker launcher.

The delivery engine's jobs live here; they load rows by id and call ``webhookapp.services``.
"""
