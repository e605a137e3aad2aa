"""Forms of the wizard (also used by Settings): they render fields and errors; actions decide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

from mathia.accounts.timezones import timezone_names
from mathia.core.errors import InvalidInput
from mathia.goals.models import ExperienceLevel
from mathia.goals.selectors import GOAL_PRESETS

if TYPE_CHECKING:
    from mathia.accounts.models import User

IMAGE_TYPES = "image/png,image/jpeg,image/gif,image/webp"


class AppErrorsMixin:
    """Puts an action's ``InvalidInput`` beside the field it names (or on top of the form)."""

    def add_app_error(self, error: InvalidInput) -> None:
        field = error.details.get("field")
        self.add_error(field if field in self.fields else None, error.message)  # type: ignore[attr-defined]


class ProfileForm(AppErrorsMixin, forms.Form):
    display_name = forms.CharField(max_length=80, label="Display name", help_text="What your teammates see.")
    title = forms.CharField(max_length=80, required=False, label="Role or title", help_text="For example: Designer.")
    timezone = forms.ChoiceField(label="Timezone", help_text="Your browser's, unless you choose another.")
    avatar = forms.FileField(
        required=False,
        label="Avatar (optional)",
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_TYPES}),
        help_text="A PNG, JPEG, GIF or WebP image.",
    )
    remove_avatar = forms.BooleanField(required=False, label="Remove my avatar")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timezone_field: forms.ChoiceField = self.fields["timezone"]  # type: ignore[assignment]
        timezone_field.choices = [(name, name.replace("_", " ")) for name in sorted(timezone_names())]

    def save_for(self, user: User) -> bool:
        """Validate and save through ``user_update_details``; False with the errors on the form."""
        from mathia.accounts.actions import user_update_details

        if not self.is_valid():
            return False
        try:
            user_update_details(
                user=user,
                display_name=self.cleaned_data["display_name"],
                title=self.cleaned_data["title"],
                timezone=self.cleaned_data["timezone"],
                avatar=self.cleaned_data["avatar"] or None,
                remove_avatar=self.cleaned_data["remove_avatar"],
            )
        except InvalidInput as error:
            self.add_app_error(error)
            return False
        return True


def _lines(value: str, *, split_commas: bool = False) -> list[str]:
    parts = value.replace(",", "\n").splitlines() if split_commas else value.splitlines()
    return [part.strip() for part in parts if part.strip()]


class GoalsForm(AppErrorsMixin, forms.Form):
    goals = forms.MultipleChoiceField(
        choices=[(g, g) for g in GOAL_PRESETS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Your professional goals",
    )
    other_goals = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Goals in your own words",
        help_text="One per line.",
        max_length=1500,
    )
    industry = forms.CharField(max_length=80, required=False, label="Industry")
    skills = forms.CharField(
        max_length=900, required=False, label="Skills", help_text="Separated by commas: Python, hiring, UX research."
    )
    experience_level = forms.ChoiceField(
        choices=[("", "Choose…"), *ExperienceLevel.choices], required=False, label="Experience level"
    )
    help_with = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=500,
        label="What would you like Mathia's help with?",
    )

    def all_goals(self) -> list[str]:
        return [*self.cleaned_data["goals"], *_lines(self.cleaned_data["other_goals"])]

    def skill_list(self) -> list[str]:
        return _lines(self.cleaned_data["skills"], split_commas=True)

    def save_for(self, user: User) -> bool:
        """Validate and save through ``goal_profile_save``; False with the errors on the form."""
        from mathia.goals.actions import goal_profile_save

        if not self.is_valid():
            return False
        try:
            goal_profile_save(
                user=user,
                goals=self.all_goals(),
                industry=self.cleaned_data["industry"],
                skills=self.skill_list(),
                experience_level=self.cleaned_data["experience_level"],
                help_with=self.cleaned_data["help_with"],
            )
        except InvalidInput as error:
            self.add_app_error(error)
            return False
        return True

    def add_app_error(self, error: InvalidInput) -> None:
        if error.details.get("field") == "goals":
            self.add_error("other_goals", error.message)
        else:
            super().add_app_error(error)

    @staticmethod
    def initial_from(profile: Any) -> dict[str, Any]:
        if profile is None:
            return {}
        presets = [g for g in profile.goals if g in GOAL_PRESETS]
        own = [g for g in profile.goals if g not in GOAL_PRESETS]
        return {
            "goals": presets,
            "other_goals": "\n".join(own),
            "industry": profile.industry,
            "skills": ", ".join(profile.skills),
            "experience_level": profile.experience_level,
            "help_with": profile.help_with,
        }


class WorkspaceForm(AppErrorsMixin, forms.Form):
    name = forms.CharField(max_length=80, label="Workspace name", help_text="Your team or company.")
    slug = forms.CharField(
        max_length=50,
        required=False,
        label="Address",
        help_text="Letters, digits and dashes; made from the name when left empty.",
    )


class JoinForm(AppErrorsMixin, forms.Form):
    invite_link = forms.CharField(max_length=500, label="Invitation link")


class TeammatesForm(AppErrorsMixin, forms.Form):
    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "bob@example.com, cy@example.com"}),
        max_length=2000,
        label="Invite teammates by email",
        help_text="Separated by commas or new lines; each gets a link that works once.",
    )
