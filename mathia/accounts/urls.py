from django.urls import path

from mathia.accounts import views

urlpatterns = [path("avatars/<int:user_id>/", views.avatar, name="avatar")]
