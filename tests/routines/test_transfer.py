"""routines.json (seed 001 shape): import on start, import/export round trip, errors."""

from __future__ import annotations

import json

import pytest

from agents.models import Session
from routines.models import Routine
from routines.services import routines_export, routines_import
from routines.services.transfer import RoutinesFileError, bootstrap, default_path
from tests.routines.conftest import make_routine

pytestmark = pytest.mark.django_db

SEED = [
    {
        "id": "morning",
        "name": "Morning news",
        "agentId": "research",
        "cron": "0 9 * * mon-fri",
        "prompt": "news summary",
        "enabled": True,
        "createdAt": "2026-01-02T03:04:05+00:00",
        "lastRunAt": "2026-02-02T09:00:01+00:00",
    },
    {
        "id": "chat-digest",
        "name": "Digest",
        "agentId": "research",
        "cron": "@daily",
        "prompt": "digest",
        "sessionId": "agent:research:chat",
        "enabled": False,
        "createdAt": "2026-01-03T00:00:00+00:00",
    },
]


def test_seed_file_imports_and_round_trips(agent):
    Session.objects.create(key="agent:research:chat", agent=agent)
    result = routines_import(data=SEED)
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    morning = Routine.objects.get(pk="morning")
    assert morning.cron == "0 9 * * mon-fri" and morning.timezone == "UTC"
    assert morning.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert morning.last_run_at.isoformat() == "2026-02-02T09:00:01+00:00"
    digest = Routine.objects.get(pk="chat-digest")
    assert not digest.enabled and digest.target_session_key == "agent:research:chat"
    exported = routines_export()
    for original, out in zip(SEED, exported, strict=True):
        for key, value in original.items():
            assert out[key] == value, key
    again = routines_import(data=json.loads(json.dumps(exported)))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = [dict(exported[0], prompt="other"), exported[1]]
    assert routines_import(data=changed).updated == 1
    assert Routine.objects.get(pk="morning").prompt == "other"
    assert routines_import(data={"routines": SEED}, update_existing=False).unchanged == 2


def test_interval_and_one_time_round_trip(agent):
    make_routine(name="every", schedule_kind="every", cron=None, every="15m")
    make_routine(
        name="once",
        schedule_kind="at",
        cron=None,
        at="2030-12-24T18:00+01:00",
        delete_after_run=True,
    )
    exported = routines_export()
    assert exported[0]["every"] == 900 and "cron" not in exported[0]
    assert exported[1]["at"] == "2030-12-24T17:00:00+00:00" and exported[1]["deleteAfterRun"]
    Routine.objects.all().delete()
    assert routines_import(data=exported).created == 2
    assert routines_export()[1]["at"] == exported[1]["at"]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda e: e.update(cron="99 99 * * *"), "routines[1].cron"),
        (lambda e: e.update(agentId="ghost"), "routines[1].agentId"),
        (lambda e: e.pop("name"), "routines[1].name"),
        (lambda e: e.update(id="morning"), "routines[1].id"),
        (lambda e: e.update(createdAt="yesterday"), "routines[1].createdAt"),
        (lambda e: e.update(timezone="Mars/Base"), "routines[1].timezone"),
    ],
)
def test_a_bad_entry_names_itself_and_saves_nothing(agent, mutate, where):
    entries = [dict(SEED[0]), {**SEED[1], "sessionId": None}]
    mutate(entries[1])
    with pytest.raises(RoutinesFileError) as caught:
        routines_import(data=entries)
    assert caught.value.where == where
    assert Routine.objects.count() == 0


def test_not_a_list():
    with pytest.raises(RoutinesFileError):
        routines_import(data={"nope": 1})


def test_bootstrap_reads_the_state_dir_file_once(agent, settings, tmp_path):
    settings.STATE_DIR = tmp_path
    assert bootstrap() is None
    default_path().write_text(json.dumps(SEED))
    line = bootstrap()
    assert "2 created" in line
    # a session target that does not exist here becomes the routine's own thread
    assert Routine.objects.get(pk="chat-digest").target_kind == "routine"
    Routine.objects.filter(pk="morning").update(prompt="edited here")
    assert "2 unchanged" in bootstrap()
    assert Routine.objects.get(pk="morning").prompt == "edited here"
    default_path().write_text("{not json")
    with pytest.raises(RoutinesFileError):
        bootstrap()
