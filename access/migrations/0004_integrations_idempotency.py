

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0003_version_stamp'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='integration',
            field=models.CharField(blank=True, help_text='The program it belongs to; empty: this key alone.', max_length=100),
        ),
        migrations.CreateModel(
            name='IdempotencyRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('principal', models.CharField(max_length=40)),
                ('key', models.CharField(max_length=255)),
                ('fingerprint', models.CharField(max_length=64)),
                ('status', models.CharField(choices=[('running', 'Running'), ('done', 'Done')], default='running', max_length=7)),
                ('response_status', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('response_body', models.BinaryField(blank=True, null=True)),
                ('response_headers', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name': 'idempotency record',
                'constraints': [models.UniqueConstraint(fields=('principal', 'key'), name='unique_idempotency_key')],
            },
        ),
    ]
