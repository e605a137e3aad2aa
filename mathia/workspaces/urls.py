from django.urls import path

from mathia.workspaces import views

urlpatterns = [
    path("", views.home, name="home"),
    path("w/new/", views.workspace_create, name="workspace_create"),
    path("w/<slug:slug>/members/", views.workspace_detail, name="workspace_detail"),
    path("w/<slug:slug>/members/<int:user_id>/role/", views.member_set_role, name="workspace_member_set_role"),
]
