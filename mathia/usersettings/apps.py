from django.apps import AppConfig


class UserSettingsConfig(AppConfig):
    name = "mathia.usersettings"
    label = "usersettings"
