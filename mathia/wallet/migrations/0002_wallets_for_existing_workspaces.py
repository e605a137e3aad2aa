from django.db import migrations
from django.utils import timezone


def open_wallets(apps, schema_editor):
    """Workspaces made before wallets existed get an empty one (no grant: staff credit them)."""
    Wallet = apps.get_model("wallet", "Wallet")
    Workspace = apps.get_model("workspaces", "Workspace")
    now = timezone.now()
    missing = Workspace.objects.filter(wallet__isnull=True).values_list("pk", flat=True)
    Wallet.objects.bulk_create([Wallet(workspace_id=pk, updated_at=now) for pk in missing])


class Migration(migrations.Migration):
    dependencies = [("wallet", "0001_initial"), ("workspaces", "0001_initial")]

    operations = [migrations.RunPython(open_wallets, migrations.RunPython.noop)]
