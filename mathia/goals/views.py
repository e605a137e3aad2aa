"""Settings → Goals: edit them, see exactly what Mathia is told, turn personalization off."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from mathia.core.http import request_user
from mathia.goals.actions import goal_profile_set_personalize
from mathia.goals.selectors import goal_facts, goal_profile_for_user, goal_prompt_section
from mathia.onboarding.forms import GoalsForm
from mathia.usersettings.sections import render_section


@login_required
@require_http_methods(["GET", "POST"])
def settings_goals(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    profile = goal_profile_for_user(user=user)
    form = GoalsForm(initial=GoalsForm.initial_from(profile))
    if request.method == "POST" and request.POST.get("action") == "personalize":
        enabled = request.POST.get("personalize") == "on"
        goal_profile_set_personalize(user=user, enabled=enabled)
        messages.success(request, "Mathia will use your goals." if enabled else "Mathia will not use your goals.")
        return redirect("settings_goals")
    if request.method == "POST":
        form = GoalsForm(request.POST)
        if form.save_for(user):
            messages.success(request, "Goals saved.")
            return redirect("settings_goals")
    personalize = profile.personalize if profile is not None else True
    context = {
        "form": form,
        "personalize": personalize,
        "facts": goal_facts(user=user, profile=profile),
        # Exactly the text added to Mathia's instructions when you ask it something (None: nothing).
        "prompt_text": goal_prompt_section(user=user, profile=profile),
    }
    return render_section(request, "goals", "settings/goals.html", context, status=400 if form.errors else 200)
