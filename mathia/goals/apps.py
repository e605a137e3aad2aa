from django.apps import AppConfig


class GoalsConfig(AppConfig):
    name = "mathia.goals"
    label = "goals"

    def ready(self) -> None:
        from mathia.assistant.context import CONTEXT_SOURCES
        from mathia.goals.context import GoalContextSource

        # The asker's goals become a section of the assistant's system prompt.
        if not any(isinstance(source, GoalContextSource) for source in CONTEXT_SOURCES):
            CONTEXT_SOURCES.append(GoalContextSource())
