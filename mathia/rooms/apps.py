from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "mathia.rooms"
    label = "rooms"
