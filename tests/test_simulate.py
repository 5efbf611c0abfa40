"""``vault demo simulate``: a rehearsal of a programme's evaluation in a scratch copy."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from vault.audit.models import AuditEvent
from vault.cli import cli
from vault.cli_simulate import to_json, to_text
from vault.db import unit_of_work
from vault.programmes.definition import load_definition
from vault.rehearsal.run import Options, rehearse

SHIPPED = Path(__file__).resolve().parent.parent / "policies" / "programmes"

#: A small programme (one document kind, four stages, a 0-10 benchmark import, a
#: disqualification rule, a majority stage): every feature of a rehearsal in a few seconds.
SMALL = """
code = "rehearsal-check"
title_ko = "리허설 점검 사업"
title_en = "Rehearsal check programme"
submission_opens = 2026-11-01T09:00:00+09:00
submission_deadline = 2027-01-15T18:00:00+09:00
current_stage = "call"

[[document_kinds]]
id = "proposal"
title_ko = "사업계획서"
title_en = "Project proposal"
media_types = ["application/pdf"]
max_size_mb = 10
per = "consortium"

[document_kinds.screening]
min_pages = 2
max_pages = 10
page_size = "A4"
headings = [{ ko = "사업 개요", en = "Project overview" }]

[[stages]]
id = "written"
title_ko = "서면평가"
title_en = "Written evaluation"
review_opens = 2027-01-25T09:00:00+09:00
review_closes = 2027-02-12T18:00:00+09:00
decision = "top"
keep = 4

[stages.scoring]
scale = { min = 0, max = 100 }
trim_from = 3
tie_break = ["criterion:quality", "earliest_submission"]

[[stages.criteria]]
id = "quality"
title_ko = "우수성"
title_en = "Quality"
description_ko = "Quality 설명"
description_en = "What quality means"
weight = 60

[[stages.criteria]]
id = "plan"
title_ko = "계획"
title_en = "Plan"
description_ko = "Plan 설명"
description_en = "What plan means"
weight = 40

[[stages]]
id = "checkpoint"
title_ko = "단계평가"
title_en = "Checkpoint"
review_opens = 2027-09-06T09:00:00+09:00
review_closes = 2027-09-24T18:00:00+09:00
decision = "eliminate"
eliminate = 1

[stages.scoring]
scale = { min = 1, max = 5 }
trim_from = 0
tie_break = ["earliest_submission"]

[[stages.components]]
id = "benchmark"
title_ko = "벤치마크"
title_en = "Benchmark"
weight = 60
source = "import"
scale = { min = 0, max = 10 }

[[stages.components]]
id = "experts"
title_ko = "전문가"
title_en = "Experts"
weight = 40
source = "panel"

[[stages.criteria]]
id = "progress"
title_ko = "진척도"
title_en = "Progress"
description_ko = "Progress 설명"
description_en = "What progress means"
weight = 100

[[stages.disqualifications]]
id = "copied"
title_ko = "독자성 미충족"
title_en = "Not built from scratch"
description_ko = "Not built from scratch 설명"
description_en = "What not built from scratch means"

[[stages]]
id = "extra"
title_ko = "추가 선정"
title_en = "Additional selection"
review_opens = 2027-11-15T09:00:00+09:00
review_closes = 2027-12-03T18:00:00+09:00
decision = "majority"

[[stages]]
id = "final"
title_ko = "최종평가"
title_en = "Final evaluation"
review_opens = 2028-03-06T09:00:00+09:00
review_closes = 2028-03-24T18:00:00+09:00
decision = "eliminate"
eliminate = 1

[stages.scoring]
scale = { min = 0, max = 100 }
trim_from = 0
tie_break = ["earliest_submission"]

[[stages.criteria]]
id = "overall"
title_ko = "종합"
title_en = "Overall"
description_ko = "Overall 설명"
description_en = "What overall means"
weight = 100

[nda]
text = "rehearsal-check.nda.txt"
accepted_until = 2028-12-31T23:59:59+09:00
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small programme's definition file (with its NDA text beside it)."""
    folder = tmp_path_factory.mktemp("definition")
    (folder / "rehearsal-check.toml").write_text(SMALL, "utf-8")
    shutil.copy(SHIPPED / "sovereign-ai-2025.nda.txt", folder / "rehearsal-check.nda.txt")
    return folder / "rehearsal-check.toml"


def _simulate(*args: str) -> tuple[int, str, str]:
    """``vault demo simulate <args>`` without any application: exit code, stdout, stderr."""
    result = CliRunner().invoke(cli, ["demo", "simulate", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def small_runs(small: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The small programme rehearsed with seed 7 by the command and by the function (in a
    scratch directory of our own), and with seed 8 by the command."""
    outputs: dict[str, object] = {}
    for name, seed in (("first", "7"), ("other", "8")):
        code, out, err = _simulate("--seed", seed, "--format", "json", "--reviewers", "3",
                                   "--definition", str(small), "--disqualify")
        assert code == 0, out + err
        outputs[name], outputs[f"{name} stderr"] = out, err
    parent = tmp_path_factory.mktemp("scratch")
    outputs["direct"] = rehearse(Options(seed=7, reviewers=3, disqualify=True,
                                         definition=load_definition(small)),
                                 scratch_parent=parent)
    outputs["scratch left"] = list(parent.iterdir())
    return outputs


def test_the_same_seed_gives_the_same_output_byte_for_byte(small_runs):
    assert to_json(small_runs["direct"]) == small_runs["first"]


def test_another_seed_gives_another_ranking(small_runs):
    first, other = json.loads(small_runs["first"]), json.loads(small_runs["other"])
    assert ([row["team"] for row in first["stages"][0]["ranking"]]
            != [row["team"] for row in other["stages"][0]["ranking"]])


def test_every_stage_is_ranked_confirmed_and_published_in_order(small_runs):
    document = json.loads(small_runs["first"])
    stages = {stage["stage"]: stage for stage in document["stages"]}
    assert list(stages) == ["written", "checkpoint", "extra", "final"]
    written = stages["written"]["ranking"]
    assert len(written) == 15
    assert [row["outcome"] for row in written] == ["pass"] * 4 + ["not_selected"] * 11
    assert [row["rank"] for row in written] == list(range(1, 16))
    scores = [Decimal(row["score"]) for row in written]
    assert scores == sorted(scores, reverse=True)
    for stage in document["stages"]:
        assert len(stage["result_sha256"]) == 64
    # The checkpoint's composite: 60 % a 0-10 benchmark put on 0-100, 40 % the 1-5 panel.
    # --disqualify: the seed's team is disqualified there, ranked last and eliminated in
    # addition to the one the rule eliminates.
    checkpoint = stages["checkpoint"]["ranking"]
    assert all(0 <= Decimal(r["score"]) <= 100 for r in checkpoint)
    assert [r["outcome"] for r in checkpoint] == ["pass", "pass", "eliminated", "disqualified"]
    # The majority stage takes one team that is out (never the disqualified one); accepts
    # out of three votes.
    (candidate,) = stages["extra"]["ranking"]
    assert candidate["team"] in {row["team"] for row in written[4:]} | {checkpoint[2]["team"]}
    assert candidate["score"] in {"0/3", "1/3", "2/3", "3/3"}
    assert candidate["outcome"] == ("selected" if candidate["score"] in {"2/3", "3/3"}
                                    else "not_selected")
    final = stages["final"]["ranking"]
    assert len(final) == 2 + (candidate["outcome"] == "selected")
    assert [r["outcome"] for r in final] == ["selected"] * (len(final) - 1) + ["eliminated"]
    assert document["survivors"] == sorted(r["team"] for r in final[:-1])


def test_the_text_output_is_a_table_per_stage_and_the_phases_go_to_stderr(small_runs):
    lines = to_text(small_runs["direct"]).splitlines()
    assert lines[0] == ("Rehearsal of rehearsal-check: seed 7, 3 reviewers per panel, "
                        "in a scratch copy")
    header = lines.index("Written evaluation (written, decided by top)") + 1
    assert lines[header].split() == ["rank", "team", "score", "outcome"]
    assert lines[header + 1].split()[0] == "1"
    assert lines[-1].startswith("Survivors (")
    assert "rehearsing: written" in small_runs["first stderr"]
    assert "rehearsing" not in small_runs["first"]


def test_the_scratch_copy_is_removed_afterwards(small_runs):
    assert small_runs["scratch left"] == []


def test_the_shipped_programme_goes_fifteen_ten_five_four_three_two(app, runtime, data_dir):
    """Run through the test app's command runner: the operator's vault (the app's data
    directory and database) is neither read nor changed."""
    before = sorted((p.relative_to(data_dir), p.stat().st_mtime_ns)
                    for p in data_dir.rglob("*"))
    with unit_of_work(runtime.sessions) as session:
        events = session.scalar(select(func.count()).select_from(AuditEvent))
    result = app.test_cli_runner().invoke(cli, ["demo", "simulate", "--seed", "2025",
                                                "--reviewers", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["programme"] == "sovereign-ai-2025"
    funnel = [(stage["stage"], len(stage["ranking"]),
               sum(row["outcome"] in ("pass", "selected") for row in stage["ranking"]))
              for stage in document["stages"]]
    (candidate,) = document["stages"][3]["ranking"]
    extra = candidate["outcome"] == "selected"
    assert funnel == [("written", 15, 10), ("presentation", 10, 5), ("stage_1", 5, 4),
                      ("additional_call", 1, int(extra)), ("stage_2", 4 + extra, 3 + extra),
                      ("stage_3", 3 + extra, 2 + extra)]
    assert len(document["survivors"]) == 2 + extra
    after = sorted((p.relative_to(data_dir), p.stat().st_mtime_ns)
                   for p in data_dir.rglob("*"))
    assert after == before
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_a_broken_definition_exits_2_with_the_loaders_message(small, tmp_path):
    broken = tmp_path / "rehearsal-check.toml"
    broken.write_text(small.read_text("utf-8").replace("keep = 4", "keep = 0"), "utf-8")
    code, _out, err = _simulate("--seed", "1", "--definition", str(broken))
    assert code == 2
    assert err.startswith("Error: rehearsal-check.toml") and "keep" in err

    code, _out, err = _simulate("--seed", "1", "--definition", str(tmp_path / "none.toml"))
    assert code == 2 and "none.toml" in err
