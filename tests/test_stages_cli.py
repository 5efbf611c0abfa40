"""``vault stage …`` and ``vault retention run``: the operator runs a stage's round from the
command line through the policies (audited as the operator), a failure is one line with exit
status 2 and stores nothing, exports are written readable by their owner only."""

from __future__ import annotations

import csv
import io
import json
import stat

from sqlalchemy import func, select

from tests.conftest import audit_events, snapshot_fixtures
from tests.evaluation_world import PRESENTATION, SIX, EvaluationWorld, world_of
from vault.audit.service import Tag
from vault.cli import cli
from vault.evaluation.models import ComponentImport, RetentionSchedule

PROGRAMME = "sovereign-ai-2025"


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(cli, list(args))


def stage(app, command: str, stage_id: str, *extra: str):
    return invoke(app, "stage", command, "--programme", PROGRAMME, "--stage", stage_id, *extra)


built, database_url, data_dir, world = snapshot_fixtures(
    world_of(SIX, lambda world: world.scored("presentation", PRESENTATION)), EvaluationWorld.bound)


def test_the_operator_closes_confirms_publishes_and_exports(app, world, tmp_path):
    assert stage(app, "close", "presentation").output == "presentation: closed\n"
    confirmed = stage(app, "confirm", "presentation", "--yes")
    assert confirmed.exit_code == 0 and "presentation: confirmed (sha256 " in confirmed.output
    published = stage(app, "publish", "presentation", "--yes")
    assert published.exit_code == 0, published.output
    status = invoke(app, "stage", "status", "--programme", PROGRAMME)
    lines = status.output.splitlines()
    assert lines[0].startswith("written ") and "open" in lines[0]
    assert any(line.startswith("presentation") and "published" in line for line in lines)
    assert sum("6/6 submitted, 0 drafts" in line for line in lines) == 3
    output = tmp_path / "presentation.csv"
    exported = stage(app, "export", "presentation", "--output", str(output))
    assert exported.exit_code == 0, exported.output
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(output.read_text("utf-8"))))
    assert [row["consortium"] for row in rows] == list(SIX)
    assert rows[-1]["outcome"] == "not_selected" and "reviewer_3" in rows[0]
    as_json = json.loads(stage(app, "export", "presentation", "--format", "json").output)
    assert as_json[0]["consortium"] == "Baekdu"
    [closed] = audit_events(world.runtime, Tag.STAGE_CLOSED)
    assert closed["actor"]["role"] == "operator" and closed["request"]["client"] == "cli"
    assert len(audit_events(world.runtime, Tag.STAGE_EXPORTED)) == 2


def test_a_refused_step_is_one_line_and_exit_status_two(app, world):
    for result, text in (
            (stage(app, "publish", "presentation", "--yes"), "is not confirmed yet"),
            (stage(app, "export", "presentation"), "is not confirmed yet"),
            (stage(app, "close", "nowhere"), "has no stage nowhere"),
            (invoke(app, "stage", "status", "--programme", "nope"), "No programme nope")):
        assert result.exit_code == 2, result.output
        assert text in result.output and len(result.output.strip().splitlines()) == 1
    stage(app, "close", "presentation")
    reopened = stage(app, "reopen", "presentation", "--reason", "a sheet was mistyped")
    assert reopened.output == "presentation: open\n"
    declined = app.test_cli_runner().invoke(
        cli, ["stage", "confirm", "--programme", PROGRAMME, "--stage", "presentation"],
        input="n\n")
    assert declined.exit_code == 1


def test_import_checks_the_file_and_stores_nothing_on_a_problem(app, world, tmp_path):
    with world.session() as session:
        for name in SIX:
            world.submission(session, name).stage = "stage_1"
    good = tmp_path / "bench.csv"
    good.write_bytes(world.csv(dict.fromkeys(SIX, "50.5")))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(world.csv({**dict.fromkeys(SIX, "50"), "Gaon": "104.5"}))
    refused = stage(app, "import", "stage_1", "--component", "benchmark", "--file", str(bad))
    assert refused.exit_code == 2 and "line 5: 104.5 is outside 0-100." in refused.output
    with world.session() as session:
        assert session.scalar(select(func.count()).select_from(ComponentImport)) == 0
    done = stage(app, "import", "stage_1", "--component", "benchmark", "--file", str(good))
    assert done.exit_code == 0 and done.output.startswith("Imported 6 benchmark scores")
    [event] = audit_events(world.runtime, Tag.STAGE_COMPONENT_IMPORTED)
    assert event["actor"]["role"] == "operator"


def test_retention_run_reports_notices_and_shredding(app, world, clock):
    world.conclude("presentation")
    with world.session() as session:
        schedule = session.scalars(select(RetentionSchedule)).one()
    clock.now = schedule.notice_at
    first = invoke(app, "retention", "run")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Notice: Hanbit: documents destroyed on ")
    assert first.output.endswith("1 notices, 0 consortia shredded.\n")
    clock.now = schedule.shred_due
    second = invoke(app, "retention", "run")
    assert second.output == "Shredded: Hanbit\n0 notices, 1 consortia shredded.\n"
