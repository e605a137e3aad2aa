from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms

from mathia.accounts.timezones import timezone_names


class SignupForm(AllauthSignupForm):
    """allauth's sign-up plus a display name and the browser's timezone."""

    display_name = forms.CharField(max_length=80, label="Display name", help_text="What your teammates will see.")
    timezone = forms.CharField(
        max_length=64, required=False, widget=forms.HiddenInput(attrs={"data-browser-timezone": "1"})
    )

    field_order = ["display_name", "email", "password1", "password2", "timezone"]

    def clean_display_name(self) -> str:
        name = self.cleaned_data["display_name"].strip()
        if not name:
            raise forms.ValidationError("Enter a display name.")
        return name

    def clean_timezone(self) -> str:
        value = (self.cleaned_data.get("timezone") or "").strip()
        # The browser fills this in; an old browser or a blocked script leaves it empty.
        return value if value in timezone_names() else "UTC"

    def save(self, request: Any) -> Any:
        return super().save(request)
