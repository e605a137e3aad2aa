from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from mathia.accounts.models import User


class _UserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class _UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "display_name")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = _UserChangeForm
    add_form = _UserCreationForm
    ordering = ["email"]
    list_display = ["email", "display_name", "timezone", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "display_name"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "title", "timezone", "avatar")}),
        ("Onboarding", {"fields": ("onboarding_step", "onboarded_at")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "display_name", "password1", "password2")}),)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            from mathia.accounts.actions import user_register

            user_register(user=obj)
