from django.urls import path

from mathia.reminders import views

urlpatterns = [
    path("api/reminders", views.api_reminders, name="api_reminders"),
    path("api/reminders/seen", views.api_seen, name="api_reminders_seen"),
    path("api/reminders/preferences", views.api_preferences, name="api_reminder_preferences"),
    path("api/reminders/<int:reminder_id>", views.api_reminder, name="api_reminder"),
    path("api/reminders/<int:reminder_id>/cancel", views.api_cancel, name="api_reminder_cancel"),
    path("api/reminders/<int:reminder_id>/snooze", views.api_snooze, name="api_reminder_snooze"),
]
