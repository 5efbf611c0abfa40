"""The dashboard's SVG charts: valid XML, scaled right, escaped, accessible, Korean."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from flask import render_template_string
from markupsafe import Markup

from tests.conftest import sign_in
from tests.evaluation_world import TEAM_NAMES, build_world
from vault.web import charts
from vault.web.charts import FunnelBar, ReviewerLoad, ScoreSet
from vault.web.i18n import catalogue

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "Team" \'one\''


def _parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    root = ET.fromstring(str(markup))  # noqa: S314 - our own output, parsed to check it
    assert root.tag == f"{SVG}svg"
    return root


def _rects(root: ET.Element, klass: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == klass]


def _korean(text: str, **values: object) -> str:
    translated = catalogue("ko").get(text, text)
    return translated.format(**values) if values else translated


FUNNEL = [
    FunnelBar("Written evaluation", 15, 10),
    FunnelBar("Presentation evaluation", 10, 5),
    FunnelBar("Stage evaluation 1", 5, 4),
    FunnelBar("Stage evaluation 2", 4, None),
    FunnelBar("Stage evaluation 3", 0, None, future=True),
]


def test_every_chart_is_an_accessible_image_with_a_title_and_a_description():
    made = [charts.funnel_chart(FUNNEL),
            charts.score_chart(ScoreSet("Written", [Decimal("71.5")], Decimal(60))),
            charts.progress_chart([ReviewerLoad("Reviewer 1", 1, 1, 1)], stage="Written")]
    for markup in made:
        root = _parse(markup)
        assert root.get("role") == "img"
        assert root.get("viewBox", "").startswith("0 0 640 ")
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title is not None and title.text and desc is not None and desc.text
        assert root.get("aria-labelledby") == title.get("id")
        assert root.get("aria-describedby") == desc.get("id")
        assert "<script" not in str(markup) and "href" not in str(markup)


def test_a_funnel_bar_is_as_wide_as_its_share_of_the_largest_count():
    root = _parse(charts.funnel_chart(FUNNEL))
    entered = [float(r.get("width")) for r in _rects(root, "chart-entered")]
    passed = [float(r.get("width")) for r in _rects(root, "chart-passed")]
    full = charts.BAR_WIDTH
    assert entered == pytest.approx([full, full * 10 / 15, full * 5 / 15, full * 4 / 15],
                                    abs=0.01)
    # Ten of fifteen passed the first stage: two thirds of the full width.
    assert passed[0] == pytest.approx(full * 2 / 3, abs=0.01)
    assert passed == pytest.approx([full * 10 / 15, full * 5 / 15, full * 4 / 15], abs=0.01)


def test_the_funnel_greys_stages_not_reached_and_says_every_count_in_words():
    root = _parse(charts.funnel_chart(FUNNEL))
    assert len(_rects(root, "chart-future")) == 1
    desc = root.find(f"{SVG}desc").text
    assert "Written evaluation: 15 entered, 10 passed." in desc
    assert "Stage evaluation 2: 4 entered, not decided yet." in desc
    assert "Stage evaluation 3: not reached yet." in desc
    figures = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-figure"]
    assert figures == ["15 → 10", "10 → 5", "5 → 4", "4"]


def test_scores_sit_on_the_axis_where_their_value_is_and_the_cut_is_a_line():
    scores = ScoreSet("Written", [Decimal(0), Decimal(50), Decimal(100), Decimal("75.5")],
                      cut=Decimal("62.25"))
    root = _parse(charts.score_chart(scores))
    xs = sorted(float(c.get("cx")) for c in root.iter(f"{SVG}circle"))
    left, right = 40, charts.WIDTH - 40
    assert xs == pytest.approx([left, left + (right - left) / 2,
                                left + (right - left) * 0.755, right], abs=0.01)
    cut = next(line for line in root.iter(f"{SVG}line") if line.get("class") == "chart-cut")
    assert float(cut.get("x1")) == pytest.approx(left + (right - left) * 0.6225, abs=0.01)
    dots = {c.find(f"{SVG}title").text: c.get("fill") for c in root.iter(f"{SVG}circle")}
    assert dots["75.50"] == charts.PASSED and dots["50.00"] == charts.MUTED
    desc = root.find(f"{SVG}desc").text
    assert desc == "4 scores from 0.00 to 100.00, median 62.75. Cut at 62.25."


def test_equal_scores_are_stacked_so_a_tie_shows_as_two_dots():
    root = _parse(charts.score_chart(ScoreSet("Written", [Decimal(80), Decimal(80)])))
    circles = list(root.iter(f"{SVG}circle"))
    assert circles[0].get("cx") == circles[1].get("cx")
    assert circles[0].get("cy") != circles[1].get("cy")
    assert not [line for line in root.iter(f"{SVG}line") if line.get("class") == "chart-cut"]


def test_reviewer_progress_stacks_submitted_draft_and_not_started_on_one_scale():
    loads = [ReviewerLoad("Kim", 3, 2, 1), ReviewerLoad("Lee", 1, 0, 2)]
    root = _parse(charts.progress_chart(loads, stage="Written"))
    full = charts.BAR_WIDTH
    submitted = [float(r.get("width")) for r in _rects(root, "chart-submitted")]
    assert submitted == pytest.approx([full / 2, full / 6], abs=0.01)
    (draft,) = _rects(root, "chart-draft")  # Lee has no draft: no empty rectangle
    assert float(draft.get("x")) == pytest.approx(charts.BAR_LEFT + full / 2, abs=0.01)
    not_started = [float(r.get("width")) for r in _rects(root, "chart-not-started")]
    assert not_started == pytest.approx([full / 6, full / 3], abs=0.01)
    assert "Lee: 1 submitted, 0 drafts, 2 not started." in root.find(f"{SVG}desc").text


def test_hostile_labels_are_escaped_everywhere():
    made = [charts.funnel_chart([FunnelBar(HOSTILE, 3, 1)]),
            charts.score_chart(ScoreSet(HOSTILE, [Decimal(1)])),
            charts.progress_chart([ReviewerLoad(HOSTILE, 1, 0, 0)], stage=HOSTILE,
                                  chart_id='x" onload="alert(1)')]
    for markup in made:
        assert "<script>" not in str(markup)
        root = _parse(markup)
        texts = "".join(root.itertext())
        assert '<script>alert("x")</script>' in texts  # shown as text, not run
        assert all(not name.startswith("on") for e in root.iter() for name in e.attrib)


def test_long_labels_are_shortened_but_kept_whole_in_the_tooltip():
    label = "Stage evaluation with a very long title indeed"
    root = _parse(charts.funnel_chart([FunnelBar(label, 2, 1)]))
    text = next(t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label")
    assert text.find(f"{SVG}title").text == label
    assert len(text.find(f"{SVG}title").tail) == charts.LABEL_CHARACTERS
    assert text.find(f"{SVG}title").tail.endswith("…")


@pytest.mark.parametrize("markup", [
    charts.funnel_chart([]),
    charts.score_chart(ScoreSet("Written", [])),
    charts.progress_chart([], stage="Written"),
], ids=["funnel", "scores", "progress"])
def test_empty_data_renders_a_no_data_yet_chart(markup):
    root = _parse(markup)
    assert "No data for this chart yet" in "".join(root.itertext())
    assert root.find(f"{SVG}desc").text == "No data for this chart yet"
    assert not list(root.iter(f"{SVG}circle"))


def test_korean_labels_and_sentences():
    markup = charts.funnel_chart([FunnelBar("서면평가", 15, 10)], _=_korean)
    root = _parse(markup)
    assert root.find(f"{SVG}title").text == "선정 단계별 현황"
    assert root.find(f"{SVG}desc").text == "서면평가: 15개 팀 진입, 10개 팀 통과."
    assert "서면평가" in "".join(root.itertext())
    empty = _parse(charts.progress_chart([], stage="발표평가", _=_korean))
    assert empty.find(f"{SVG}title").text == "발표평가 평가위원별 진행 현황"


def test_the_cut_lies_halfway_between_the_last_passing_and_the_first_failing_score():
    scores = [Decimal(90), Decimal(70), Decimal(80), Decimal(60)]
    assert charts.cut_between(scores, 2) == Decimal(75)
    assert charts.cut_between(scores, 0) is None
    assert charts.cut_between(scores, 4) is None


def test_the_partial_lays_out_the_dashboard_charts(app):
    variables = charts.dashboard_charts(
        funnel=FUNNEL, distributions=[ScoreSet("Written", [Decimal(70)], None)],
        progress=[("Written", [ReviewerLoad("Kim", 1, 0, 0)])])
    with app.test_request_context(headers={"Accept-Language": "en"}):
        page = render_template_string('{% include "stages/_charts.html" %}', **variables)
    assert page.count("<svg") == 3
    assert 'id="chart-scores-0-title"' in page and 'id="chart-progress-0-title"' in page
    assert "Charts of the rounds" in page


def test_the_officers_dashboard_shows_the_funnel_scores_and_progress(
        app, client, clock, runtime, make_user, make_team):
    world = build_world(runtime, clock, make_user, make_team, TEAM_NAMES[:6])
    world.in_window("written")
    world.panel("written", 3)
    world.score("written", {name: 90 - 10 * i for i, name in enumerate(TEAM_NAMES[:6])})
    world.conclude("written")  # top 10 of 6: all pass
    world.in_window("presentation")
    reviewers = world.panel("presentation", 2)
    world.score("presentation", {TEAM_NAMES[0]: 80}, reviewers=reviewers[:1])

    with world.session() as session:
        rounds = world.rounds(session)
        programme = world.programme(session)
        made = charts.for_dashboard(rounds, programme, rounds.rounds(programme),
                                    locale="en")
    funnel = _parse(made["funnel"])
    assert "Written evaluation: 6 entered, 6 passed." in funnel.find(f"{SVG}desc").text
    assert "Presentation evaluation: 6 entered, not decided yet." in funnel.find(
        f"{SVG}desc").text
    assert len(_rects(funnel, "chart-future")) == 4  # stage_1 … stage_3 not reached
    written, presentation = (_parse(chart) for chart in made["distributions"])
    assert len(list(written.iter(f"{SVG}circle"))) == 6
    assert "Cut at" not in written.find(f"{SVG}desc").text  # everybody passed: no cut
    assert len(list(presentation.iter(f"{SVG}circle"))) == 1  # the live ranking so far
    progress = [_parse(chart) for chart in made["progress"]]
    assert "1 submitted, 0 drafts, 5 not started" in progress[1].find(f"{SVG}desc").text

    assert sign_in(client, world.officer, clock).status_code == 302
    page = client.get("/stages/sovereign-ai-2025").get_data(as_text=True)
    assert "Charts of the rounds" in page and page.count("<svg") >= 5
