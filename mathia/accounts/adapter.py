from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter

from mathia.accounts.actions import user_register
from mathia.accounts.models import User


class AccountAdapter(DefaultAccountAdapter):
    """Routes allauth's sign-up through our action, so the user gets a default workspace."""

    def save_user(self, request: Any, user: User, form: Any, commit: bool = True) -> User:
        user = super().save_user(request, user, form, commit=False)
        user.display_name = form.cleaned_data["display_name"]
        user.timezone = form.cleaned_data.get("timezone") or "UTC"
        if commit:
            user_register(user=user)
        return user
