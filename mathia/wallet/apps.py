from django.apps import AppConfig


class WalletConfig(AppConfig):
    name = "mathia.wallet"
    label = "wallet"
