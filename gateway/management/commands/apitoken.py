"""``python manage.py apitoken create|list|revoke``: API tokens without the admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.models import ApiToken
from gateway.security.tokens import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create (prints the secret once), list or revoke REST API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="a new token for a user")
        create.add_argument("--user", required=True, help="username")
        create.add_argument("--name", required=True, help="what the token is for")
        sub.add_parser("list", help="every token (prefix, user, name, state)")
        revoke = sub.add_parser("revoke", help="revoke the token with this prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, **options) -> None:
        if action == "create":
            self._create(options["user"], options["name"])
        elif action == "list":
            for token in ApiToken.objects.select_related("user"):
                state = "revoked" if token.revoked else "active"
                self.stdout.write(f"{token.prefix}  {token.user}  {token.name}  {state}")
        else:
            self._revoke(options["prefix"])

    def _create(self, username: str, name: str) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        try:
            _, secret = api_token_create(user=user, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(secret)
        self.stderr.write("Shown once: it is not stored. Send it as Authorization: Bearer <it>.")

    def _revoke(self, prefix: str) -> None:
        matches = list(ApiToken.objects.filter(prefix=prefix))
        if len(matches) != 1:
            raise CommandError(f"{len(matches)} tokens have the prefix {prefix!r}; need exactly 1")
        api_token_revoke(token=matches[0])
        self.stdout.write(f"revoked {matches[0]}")
