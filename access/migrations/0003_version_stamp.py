from django.db import migrations, models

from access.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0002_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="VersionStamp",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("value", models.CharField(max_length=32)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "version stamp"},
        ),
        migrations.RunPython(roles_sync_migration, migrations.RunPython.noop),
    ]
