from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from openapi_import.models import ApiSpec


class ImportForm(forms.Form):
    """Exactly one source: a URL, an uploaded file, or pasted text."""

    url = forms.URLField(
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Where the spec is served, e.g. https://api.example.com/openapi.json",
    )
    file = forms.FileField(
        required=False,
        help_text="A JSON or YAML file, or a .zip of a multi-file spec's directory (relative "
        "$refs between its files are resolved inside the .zip).",
    )
    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100, "spellcheck": "false"}),
        help_text="Or paste the document.",
    )
    target_spec = forms.ModelChoiceField(
        queryset=ApiSpec.objects.all(),
        required=False,
        label="Update spec",
        help_text="Re-import a new version into this spec (keeps staff overrides). "
        "Empty: the spec imported from the same URL, otherwise a new spec.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [name for name in ("url", "file", "text") if data.get(name)]
        if len(given) != 1:
            raise forms.ValidationError("Give exactly one of: a URL, a file, or pasted text.")
        upload = data.get("file")
        if upload is not None and upload.size > settings.IMPORT_MAX_BYTES:
            self.add_error(
                "file",
                f"The file is {upload.size:,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,}.",
            )
        return data
