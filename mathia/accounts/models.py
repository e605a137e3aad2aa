from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone as dj_timezone

from mathia.accounts.timezones import validate_timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **fields: Any) -> User:
        from mathia.accounts.actions import user_register

        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=email, **fields)
        user.set_password(password)
        return user_register(user=user)

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. The email address is the login; the display name is what others see."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=80, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    # The assistant's own account (there is one): it cannot sign in and never passes an
    # access check as itself; it acts only on behalf of the person who asked.
    is_assistant = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=dj_timezone.now)
    # Profile details asked for by the onboarding wizard (editable in Settings → Profile).
    title = models.CharField(max_length=80, blank=True, help_text="Role or title, e.g. Product designer.")
    # A re-encoded square PNG (see accounts/avatars.py); never the uploaded bytes themselves.
    avatar = models.FileField(upload_to="avatars/", blank=True)
    # Where the onboarding wizard is (the step a returning user resumes at), and when it ended.
    # The app is reachable only once ``onboarded_at`` is set (onboarding/middleware.py).
    onboarding_step = models.CharField(max_length=16, default="profile")
    onboarded_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    @property
    def is_onboarded(self) -> bool:
        return self.onboarded_at is not None

    @property
    def name(self) -> str:
        return User.name_from(self.display_name, self.email)

    @staticmethod
    def name_from(display_name: str | None, email: str | None) -> str:
        """What ``name`` is, from its two columns (for reads that fetch columns, not users)."""
        return display_name or (email or "").split("@", 1)[0]


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively, so they are stored lowercased."""
    return email.strip().lower()
