"""Staff see wallets and ledgers here and add credits; nothing here edits a balance or an entry."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from mathia.core.errors import AppError
from mathia.wallet.actions import wallet_credit
from mathia.wallet.models import EntryReason, LedgerEntry, Wallet


class CreditForm(forms.Form):
    amount = forms.IntegerField(min_value=1, max_value=10**12, help_text="Whole credits.")
    note = forms.CharField(max_length=200, help_text="Why (shown in the workspace's ledger).")
    # Made when the form is shown: submitting it twice (a double click, a reload) credits once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=128)


class LedgerInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    ordering = ["-id"]
    fields = ("created_at", "kind", "amount", "balance_after", "reason", "note", "actor", "usage", "idempotency_key")
    readonly_fields = fields
    show_change_link = False
    max_num = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["workspace", "balance", "updated_at"]
    search_fields = ["workspace__name", "workspace__slug"]
    readonly_fields = ["workspace", "balance", "updated_at", "credit_link"]
    fields = ["workspace", "balance", "updated_at", "credit_link"]
    inlines = [LedgerInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Add credits")
    def credit_link(self, obj):
        from django.utils.html import format_html

        return format_html('<a href="{}">Add credits…</a>', reverse("admin:wallet_wallet_credit", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<int:wallet_id>/credit/", self.admin_site.admin_view(self.credit_view), name="wallet_wallet_credit"),
            *super().get_urls(),
        ]

    def credit_view(self, request, wallet_id):
        if not self.has_change_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        wallet = get_object_or_404(Wallet.objects.select_related("workspace"), pk=wallet_id)
        form = CreditForm(request.POST or None, initial={"idempotency_key": f"staff-admin:{uuid.uuid4().hex}"})
        if request.method == "POST" and form.is_valid():
            try:
                applied = wallet_credit(
                    wallet_id=wallet.pk,
                    amount=form.cleaned_data["amount"],
                    reason=EntryReason.STAFF_CREDIT,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                    actor=request.user,
                    note=form.cleaned_data["note"],
                )
            except AppError as error:
                form.add_error(None, error.message)
            else:
                if applied.replayed:
                    messages.info(request, "That credit was already applied; nothing was added.")
                else:
                    messages.success(request, f"Added {applied.entry.amount} credits to {wallet.workspace}.")
                return redirect("admin:wallet_wallet_change", wallet.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add credits to {wallet.workspace}",
            "form": form,
            "wallet": wallet,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/wallet/credit.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "wallet", "kind", "amount", "balance_after", "reason", "actor"]
    list_filter = ["kind", "reason"]
    search_fields = ["wallet__workspace__slug", "idempotency_key", "note"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
