from django.urls import path

from mathia.usersettings import views

urlpatterns = [
    path("settings/", views.settings_home, name="settings"),
    path("settings/profile/", views.settings_profile, name="settings_profile"),
]
