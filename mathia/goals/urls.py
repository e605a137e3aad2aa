from django.urls import path

from mathia.goals import views

urlpatterns = [path("settings/goals/", views.settings_goals, name="settings_goals")]
