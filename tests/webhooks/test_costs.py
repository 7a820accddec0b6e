"""What accepted deliveries cost the database (SQL statements, counted on every thread):
until the 202, for the run, and in a burst where runs queue in their threads. Statements
are the load-insensitive measure of the embedded default's bottleneck, the one thread all
of a process's SQLite work goes through (README, "Webhooks" benchmark)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created

from agents.services.runs import local
from tests.webhooks.conftest import make_webhook, post

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


class Statements:
    """Every SQL statement run while installed, on any connection (transaction control
    included: ``BEGIN``; commits are not statements Django executes)."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, execute, sql, params, many, context):
        with self.lock:
            self.sql.append(sql)
        return execute(sql, params, many, context)

    def install(self, connection=None) -> None:
        connection = connection or connections["default"]
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)

    def remove(self) -> None:
        connection = connections["default"]
        if self in connection.execute_wrappers:
            connection.execute_wrappers.remove(self)


@contextlib.asynccontextmanager
async def counting():
    """Count on the database thread's connection and on any connection opened meanwhile."""
    statements = Statements()

    def created(sender, connection, **kwargs):
        statements.install(connection)

    on_db_thread = sync_to_async(thread_sensitive=True)
    connection_created.connect(created)
    await on_db_thread(statements.install)()
    try:
        yield statements
    finally:
        connection_created.disconnect(created)
        await on_db_thread(statements.remove)()


async def ended() -> None:
    runs = local.here()
    async with asyncio.timeout(30):
        while runs.active:
            await asyncio.gather(*(a.done.wait() for a in list(runs.active.values())))


async def deliver(path: str, secret: str, n: int = 1) -> list:
    return await asyncio.gather(
        *(post(path, {"prompt": f"p{i}"}, headers={"X-Wingman-Secret": secret}) for i in range(n))
    )


async def test_statements_of_one_accepted_delivery_and_its_run():
    _, secret = await make_webhook(name="Costs")
    await deliver("/webhooks/costs", secret)  # the thread has history; connections are open
    await ended()
    async with counting() as statements:
        [response] = await deliver("/webhooks/costs", secret)
        accept = len(statements.sql)
        await ended()
        run = len(statements.sql) - accept
    assert response.status_code == 202
    print(f"\none delivery: {accept} statements to the 202, {run} for its run")
    # main's code before this test: 26 (17 + 9; the run's first ask can come before the 202)
    assert accept + run <= 23, statements.sql


async def test_statements_per_delivery_in_a_burst():
    """60 deliveries at once to 3 webhooks: runs queue 20 deep in each thread."""
    hooks = [await make_webhook(name=f"Burst {i}") for i in range(3)]
    for webhook, secret in hooks:
        await deliver(f"/webhooks/{webhook.id}", secret)
    await ended()
    async with counting() as statements:
        answers = await asyncio.gather(
            *(deliver(f"/webhooks/{webhook.id}", secret, 20) for webhook, secret in hooks)
        )
        await ended()
    assert all(r.status_code == 202 for batch in answers for r in batch)
    per_delivery = len(statements.sql) / 60
    print(f"\nburst: {per_delivery:.1f} statements per delivery (with its run)")
    # main's code before this test: 31.6; queued runs asked the database every few seconds
    assert per_delivery <= 24, per_delivery
