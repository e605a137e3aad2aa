from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "mathia.realtime"
    label = "realtime"
