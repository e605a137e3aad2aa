from django.contrib import admin
from django.urls import include, path

from mathia.health import views as health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("mathia.workspaces.urls")),
    path("", include("mathia.rooms.urls")),
    path("", include("mathia.onboarding.urls")),
    path("", include("mathia.accounts.urls")),
    path("", include("mathia.usersettings.urls")),
    path("", include("mathia.goals.urls")),
    path("", include("mathia.wallet.urls")),
    path("", include("mathia.mcpbridge.urls")),
    path("", include("mathia.reminders.urls")),
]
