from django.contrib import admin

from mathia.goals.models import GoalProfile


@admin.register(GoalProfile)
class GoalProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "industry", "experience_level", "personalize", "updated_at"]
    list_filter = ["personalize", "experience_level"]
    search_fields = ["user__email", "industry"]
    autocomplete_fields = ["user"]
