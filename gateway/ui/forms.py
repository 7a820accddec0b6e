"""The Control UI's login form for the gateway secret, and the base of the apps' forms that
feed a service (agents, routines, webhooks)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


class ServiceForm(forms.Form):
    """A form whose cleaned data are a service's keyword arguments; the service's field-keyed
    ``ValidationError`` is shown next to the fields."""

    #: a service error's key → this form's field, where the two names differ
    error_fields: dict[str, str] = {}

    def service_fields(self) -> dict:
        """The cleaned data as the services' keyword arguments (without ``id``)."""
        data = dict(self.cleaned_data)
        data.pop("id", None)
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's field-keyed errors next to the fields (unknown keys on top)."""
        by_field = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
        for key, messages in by_field.items():
            field = self.error_fields.get(key, key)
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)


class GatewaySecretForm(forms.Form):
    """Log in with the gateway token (or password, in password mode)."""

    secret = forms.CharField(
        label="Gateway token or password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
