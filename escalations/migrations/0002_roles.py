from django.db import migrations

from access.roles import roles_sync_migration


class Migration(migrations.Migration):
    """Give the staff roles the permissions of this app's new models."""

    dependencies = [
        ("escalations", "0001_initial"),
        ("conversations", "0002_roles"),
        ("access", "0002_roles"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
