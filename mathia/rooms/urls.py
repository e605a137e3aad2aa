from django.urls import path

from mathia.rooms import views

urlpatterns = [
    path("w/<slug:slug>/", views.chat, name="chat"),
    path("invite/<str:token>/", views.invite, name="invite"),
    path("api/w/<slug:slug>/rooms", views.api_rooms, name="api_rooms"),
    path("api/w/<slug:slug>/rooms/browse", views.api_browse, name="api_browse"),
    path("api/w/<slug:slug>/people", views.api_people, name="api_people"),
    path("api/w/<slug:slug>/direct", views.api_direct, name="api_direct"),
    path("api/rooms/<int:room_id>", views.api_room, name="api_room"),
    path("api/rooms/<int:room_id>/join", views.api_join, name="api_join"),
    path("api/rooms/<int:room_id>/leave", views.api_leave, name="api_leave"),
    path("api/rooms/<int:room_id>/members/<int:user_id>/role", views.api_member_role, name="api_member_role"),
    path("api/rooms/<int:room_id>/invites", views.api_invites, name="api_invites"),
    path("api/invites/<int:invite_id>/revoke", views.api_invite_revoke, name="api_invite_revoke"),
]
