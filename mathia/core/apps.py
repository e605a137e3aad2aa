from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mathia.core"
    label = "core"
