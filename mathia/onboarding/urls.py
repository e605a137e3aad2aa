from django.urls import path

from mathia.onboarding import views

urlpatterns = [
    path("welcome/", views.onboarding, name="onboarding"),
    path("welcome/<slug:step>/", views.onboarding_step, name="onboarding_step"),
]
