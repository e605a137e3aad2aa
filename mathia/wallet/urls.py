from django.urls import path

from mathia.wallet import views

urlpatterns = [
    path("settings/wallet/", views.settings_wallet_home, name="settings_wallet_home"),
    path("settings/wallet/<slug:slug>/", views.settings_wallet, name="settings_wallet"),
]
