from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "mathia.workspaces"
    label = "workspaces"
