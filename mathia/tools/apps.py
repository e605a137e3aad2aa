from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "mathia.tools"
    label = "tools"

    def ready(self) -> None:
        """Load the built-in connectors, then every installed app's ``tools`` module.

        A connector registers its tools, slash commands and intents when its module is imported,
        so ``<app>/tools.py`` in any installed app is all it takes to add one.
        """
        from django.utils.module_loading import autodiscover_modules

        from mathia.tools import connectors  # noqa: F401  (registers help, weather, gif, fx)

        autodiscover_modules("tools")
