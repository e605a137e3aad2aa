from __future__ import annotations

import smtplib
from typing import Any

import structlog
from allauth.account.adapter import DefaultAccountAdapter
from django.contrib import messages

from mathia.accounts.actions import user_register
from mathia.accounts.models import User

log = structlog.get_logger(__name__)

MAIL_FAILED = (
    "We could not send you the email just now (our mail server did not answer). "
    "Your account is safe; ask for the email again in a few minutes."
)


class AccountAdapter(DefaultAccountAdapter):
    """Routes allauth's sign-up through our action, so the user gets a default workspace."""

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """A dead mail server must not turn sign-up or a password reset into an error page."""
        try:
            super().send_mail(template_prefix, email, context)
        except (smtplib.SMTPException, OSError):
            log.error("account_email_not_sent", template=template_prefix, exc_info=True)
            request = getattr(self, "request", None)
            if request is not None and hasattr(request, "_messages"):
                messages.error(request, MAIL_FAILED)

    def save_user(self, request: Any, user: User, form: Any, commit: bool = True) -> User:
        user = super().save_user(request, user, form, commit=False)
        user.display_name = form.cleaned_data["display_name"]
        user.timezone = form.cleaned_data.get("timezone") or "UTC"
        if commit:
            user_register(user=user)
        return user
