from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "mathia.health"
    label = "health"
