"""The Control UI's login form for the gateway secret."""

from __future__ import annotations

from django import forms


class GatewaySecretForm(forms.Form):
    """Log in with the gateway token (or password, in password mode)."""

    secret = forms.CharField(
        label="Gateway token or password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
