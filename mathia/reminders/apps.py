from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "mathia.reminders"
    label = "reminders"
