"""`daydream imagine` prints what the embedded model understood of the prompt
under its "done" line (the record's `understood`, as the Discord message
says it), and for a prompt outside the model's world the line that says what
it can draw; `daydream job` has the fields in the record it prints."""

from __future__ import annotations

import argparse
import json

import pytest

from daydream import submit
from shared.job import JobState
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"understood": "a red circle on blue"}, "Understood: a red circle on blue"),
        ({"understood": "", "out_of_world": True, "unread": ["lighthouse", "dusk"]}, "A real checkpoint (`MODEL=…`)"),
    ],
)
def test_the_done_line_is_followed_by_what_was_understood(
    settings: Settings, capsys: pytest.CaptureFixture[str], fields: dict, line: str
) -> None:
    store = JobStore(settings)
    job = make_job(prompt="蓝色背景上的红色圆形")
    store.submit(job, check=False)
    done = store.finish(job.id, JobState.DONE, started_at=1.0, **fields)
    assert submit._finish(store, done, argparse.Namespace(json=False, output=None)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"job {job.id} done") and line in out[1]
    assert submit._finish(store, done, argparse.Namespace(json=True, output=None)) == 0
    assert json.loads(capsys.readouterr().out)["understood"] == fields["understood"]
