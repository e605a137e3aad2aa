"""Celery adapters for the tool router."""

from __future__ import annotations

from celery import shared_task

from mathia.tools.audit import audit_flush


@shared_task(name="tools.flush_audit", ignore_result=True)
def flush_audit() -> int:
    """Move tool-call audit entries from Redis to the database (the web process also does, soon after each call)."""
    return audit_flush()
