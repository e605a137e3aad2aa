from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "mathia.onboarding"
    label = "onboarding"
