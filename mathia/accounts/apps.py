from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mathia.accounts"
    label = "accounts"
