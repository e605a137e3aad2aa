from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "mathia.assistant"
    label = "assistant"
