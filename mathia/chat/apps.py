from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "mathia.chat"
    label = "chat"
