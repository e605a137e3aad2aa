"""Mathia: a self-hosted team chat with an assistant that acts."""

from mathia.celery import app as celery_app

__all__ = ["celery_app"]
