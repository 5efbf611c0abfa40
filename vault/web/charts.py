"""Charts for the officer's stage dashboard: server-rendered, accessible SVG, no JavaScript.

Each chart is a pure function of plain data returning ``Markup``: an ``<svg role="img">`` with a
``<title>`` and a ``<desc>`` that says in words what the picture shows (screen readers read the
description, not the shapes), a fixed ``viewBox`` so it scales with the page, text labels, and
colours as presentation attributes (the page's stylesheet may override them through the
``chart-*`` classes). Every piece of text is escaped: stage titles and reviewer labels come from
definitions and accounts, so they are data, never markup.

Strings go through the ``_`` argument (``vault.web.i18n.gettext`` on a page, English by
default), so the translation test finds them and the charts speak Korean on a Korean page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from markupsafe import Markup, escape

from vault.errors import DomainError
from vault.evaluation.models import RoundState
from vault.evaluation.ranking import Outcome
from vault.evaluation.stages import RoundView, StageRounds
from vault.programmes.models import Programme

#: ``gettext``'s shape: an English source string and its ``{placeholder}`` values.
Translate = Callable[..., str]

#: Every chart is this wide in its own units; the page scales it to its column.
WIDTH = 640
#: Room for the row labels (stage titles, reviewer labels) left of the bars.
LABEL_WIDTH = 190
#: Room right of the bars for the figures ("15 → 10", "3/6").
FIGURE_WIDTH = 80
BAR_LEFT = LABEL_WIDTH + 10
BAR_WIDTH = WIDTH - BAR_LEFT - FIGURE_WIDTH
ROW = 34
BAR_HEIGHT = 20
#: Longer labels are cut with an ellipsis (the whole label stays in the row's tooltip and in
#: the description), because SVG text does not wrap.
LABEL_CHARACTERS = 26

INK = "#1b1f24"
MUTED = "#5b6470"
LINE = "#d9dee4"
ENTERED = "#cfe0ff"
PASSED = "#0b4f9c"
FUTURE = "#eef0f3"
DRAFT = "#e0a526"
CUT = "#a11a1a"


def english(text: str, **values: object) -> str:
    """The source string itself (charts outside a request, tests)."""
    return text.format(**values) if values else text


@dataclass(frozen=True)
class FunnelBar:
    """One stage of the funnel: how many entered it and, once decided, how many passed."""

    label: str
    entered: int
    #: ``None`` while the stage is not decided.
    passed: int | None = None
    #: A stage not reached yet: drawn greyed, without figures.
    future: bool = False


@dataclass(frozen=True)
class ScoreSet:
    """The submissions' scores in one stage on the 0-100 axis, and the cut if there is one."""

    label: str
    scores: Sequence[Decimal]
    #: A score between the last passing and the first failing one; ``None``: no cut (yet).
    cut: Decimal | None = None


@dataclass(frozen=True)
class ReviewerLoad:
    """One reviewer's sheets in a stage: submitted, saved as drafts, not started."""

    label: str
    submitted: int
    drafts: int
    not_started: int

    @property
    def assigned(self) -> int:
        """Every sheet the reviewer owes."""
        return self.submitted + self.drafts + self.not_started


def funnel_chart(bars: Sequence[FunnelBar], *, _: Translate = english,
                 chart_id: str = "funnel") -> Markup:
    """The selection funnel: per stage a bar of those who entered with those who passed over
    it, all on one scale (the largest count is the full width); stages not reached are grey."""
    title = _("Selection funnel")
    if not bars:
        return _empty(chart_id, title, _)
    largest = max(max(bar.entered, bar.passed or 0) for bar in bars) or 1
    parts: list[str] = []
    sentences: list[str] = []
    for index, bar in enumerate(bars):
        y = 10 + index * ROW
        parts.append(_label(bar.label, y))
        if bar.future:
            parts.append(_rect("chart-future", BAR_LEFT, y, BAR_WIDTH, FUTURE))
            parts.append(_text(_("stage not reached yet"), BAR_LEFT + 8, y + 14, fill=MUTED))
            sentences.append(_("{stage}: not reached yet.", stage=bar.label))
            continue
        parts.append(_rect("chart-entered", BAR_LEFT, y, _width(bar.entered, largest),
                           ENTERED))
        if bar.passed is None:
            figure = str(bar.entered)
            sentences.append(_("{stage}: {entered} entered, not decided yet.",
                               stage=bar.label, entered=bar.entered))
        else:
            parts.append(_rect("chart-passed", BAR_LEFT, y, _width(bar.passed, largest),
                               PASSED, height=BAR_HEIGHT - 8))
            figure = f"{bar.entered} → {bar.passed}"
            sentences.append(_("{stage}: {entered} entered, {passed} passed.",
                               stage=bar.label, entered=bar.entered, passed=bar.passed))
        parts.append(_text(figure, BAR_LEFT + BAR_WIDTH + 8, y + 15, fill=INK,
                           klass="chart-figure"))
    height = 10 + len(bars) * ROW + 24
    parts.append(_legend(height - 20, [(_("entered the stage"), ENTERED),
                                       (_("passed the stage"), PASSED)]))
    return _svg(chart_id, title, " ".join(sentences), height, parts)


def score_chart(scores: ScoreSet, *, _: Translate = english, chart_id: str = "scores",
                low: int = 0, high: int = 100) -> Markup:
    """A strip plot of one stage's scores on the ``low``-``high`` axis: a dot per submission
    (equal scores stacked), the median marked, and the cut as a dashed line."""
    title = _("Scores in {stage}", stage=scores.label)
    if not scores.scores:
        return _empty(chart_id, title, _)
    ordered = sorted(scores.scores)
    left, right = 40, WIDTH - 40
    span = Fraction(high - low)

    def x_of(value: Decimal) -> Fraction:
        clamped = min(max(Fraction(value), Fraction(low)), Fraction(high))
        return left + (clamped - low) / span * (right - left)

    axis_y = 110
    parts = [f'<line class="chart-axis" x1="{left}" y1="{axis_y}" x2="{right}" '
             f'y2="{axis_y}" stroke="{MUTED}" stroke-width="1"/>']
    for tick in range(5):
        value = low + (high - low) * tick // 4
        x = _n(x_of(Decimal(value)))
        parts.append(f'<line x1="{x}" y1="{axis_y}" x2="{x}" y2="{axis_y + 5}" '
                     f'stroke="{MUTED}" stroke-width="1"/>')
        parts.append(_text(str(value), float(x), axis_y + 18, fill=MUTED, anchor="middle"))
    stacked: dict[Decimal, int] = {}
    for value in ordered:
        level = stacked.get(value, 0)
        stacked[value] = level + 1
        above = scores.cut is None or value >= scores.cut
        parts.append(
            f'<circle class="chart-dot" cx="{_n(x_of(value))}" cy="{axis_y - 9 - level * 11}" '
            f'r="5" fill="{PASSED if above else MUTED}" fill-opacity="0.8">'
            f"<title>{escape(_decimal(value))}</title></circle>")
    median = _median(ordered)
    parts.append(f'<line class="chart-median" x1="{_n(x_of(median))}" y1="{axis_y - 4}" '
                 f'x2="{_n(x_of(median))}" y2="{axis_y + 4}" stroke="{INK}" stroke-width="3"/>')
    description = _("{count} scores from {low} to {high}, median {median}.",
                    count=len(ordered), low=_decimal(ordered[0]), high=_decimal(ordered[-1]),
                    median=_decimal(median))
    if scores.cut is not None:
        x = _n(x_of(scores.cut))
        parts.append(f'<line class="chart-cut" x1="{x}" y1="14" x2="{x}" y2="{axis_y + 4}" '
                     f'stroke="{CUT}" stroke-width="2" stroke-dasharray="5 3"/>')
        parts.append(_text(_("cut {cut}", cut=_decimal(scores.cut)), float(x), 11, fill=CUT,
                           anchor="middle", klass="chart-cut-label"))
        description += " " + _("Cut at {cut}.", cut=_decimal(scores.cut))
    return _svg(chart_id, title, description, 140, parts)


def progress_chart(loads: Sequence[ReviewerLoad], *, stage: str, _: Translate = english,
                   chart_id: str = "progress") -> Markup:
    """Reviewer progress in a stage: per reviewer a bar of submitted, draft and not started
    sheets, all on one scale (the largest assignment is the full width)."""
    title = _("Reviewer progress in {stage}", stage=stage)
    if not loads:
        return _empty(chart_id, title, _)
    largest = max(load.assigned for load in loads) or 1
    parts: list[str] = []
    sentences: list[str] = []
    for index, load in enumerate(loads):
        y = 10 + index * ROW
        parts.append(_label(load.label, y))
        x = Fraction(BAR_LEFT)
        for klass, count, colour in (("chart-submitted", load.submitted, PASSED),
                                     ("chart-draft", load.drafts, DRAFT),
                                     ("chart-not-started", load.not_started, FUTURE)):
            width = _width(count, largest)
            if count:
                parts.append(_rect(klass, x, y, width, colour))
            x += width
        parts.append(_text(f"{load.submitted}/{load.assigned}", BAR_LEFT + BAR_WIDTH + 8,
                           y + 15, fill=INK, klass="chart-figure"))
        sentences.append(_(
            "{reviewer}: {submitted} submitted, {drafts} drafts, {not_started} not started.",
            reviewer=load.label, submitted=load.submitted, drafts=load.drafts,
            not_started=load.not_started))
    height = 10 + len(loads) * ROW + 24
    parts.append(_legend(height - 20, [(_("sheets submitted"), PASSED),
                                       (_("sheets in draft"), DRAFT),
                                       (_("sheets not started"), FUTURE)]))
    return _svg(chart_id, title, " ".join(sentences), height, parts)


def cut_between(scores: Sequence[Decimal], passing: int) -> Decimal | None:
    """The cut line for a stage where the ``passing`` best scores go on: halfway between the
    last passing score and the first one that does not (``None`` when nobody or everybody
    passes)."""
    ordered = sorted(scores, reverse=True)
    if not 0 < passing < len(ordered):
        return None
    return (ordered[passing - 1] + ordered[passing]) / 2


def _svg(chart_id: str, title: str, description: str, height: int, parts: list[str]) -> Markup:
    safe_id = _safe_id(chart_id)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {WIDTH} {height}" width="100%" font-size="13" '
            f'aria-labelledby="{safe_id}-title" aria-describedby="{safe_id}-desc">'
            f'<title id="{safe_id}-title">{escape(title)}</title>'
            f'<desc id="{safe_id}-desc">{escape(description)}</desc>')
    return Markup(head + "".join(parts) + "</svg>")  # noqa: S704 - every text escaped above


def _empty(chart_id: str, title: str, _: Translate) -> Markup:
    message = _("No data for this chart yet")
    parts = [f'<rect class="chart-empty" x="0" y="0" width="{WIDTH}" height="60" '
             f'fill="{FUTURE}" rx="6"/>',
             _text(message, WIDTH / 2, 35, fill=MUTED, anchor="middle")]
    return _svg(chart_id, title, message, 60, parts)


def _label(label: str, y: int) -> str:
    shown = label if len(label) <= LABEL_CHARACTERS else label[:LABEL_CHARACTERS - 1] + "…"
    return (f'<text class="chart-label" x="{LABEL_WIDTH}" y="{y + 15}" text-anchor="end" '
            f'fill="{INK}"><title>{escape(label)}</title>{escape(shown)}</text>')


def _rect(klass: str, x: float | Fraction, y: int, width: float | Fraction, fill: str,
          height: int = BAR_HEIGHT) -> str:
    return (f'<rect class="{klass}" x="{_n(x)}" y="{y + (BAR_HEIGHT - height) // 2}" '
            f'width="{_n(width)}" height="{height}" fill="{fill}"/>')


def _text(text: str, x: float, y: int, *, fill: str, anchor: str = "start",
          klass: str = "chart-text") -> str:
    return (f'<text class="{klass}" x="{_n(x)}" y="{y}" text-anchor="{anchor}" '
            f'fill="{fill}">{escape(text)}</text>')


def _legend(y: int, entries: list[tuple[str, str]]) -> str:
    parts = []
    x = 10
    for label, colour in entries:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}" '
                     f'stroke="{LINE}"/>')
        parts.append(_text(label, x + 17, y + 11, fill=MUTED, klass="chart-legend"))
        x += 30 + _text_width(label)
    return "".join(parts)


def _text_width(text: str) -> int:
    """Roughly how wide ``text`` is at 13 px: Hangul is about twice as wide as Latin."""
    return sum(13 if ord(character) > 0x2E80 else 7 for character in text)


def _width(count: int, largest: int) -> Fraction:
    return Fraction(count, largest) * BAR_WIDTH


def _n(value: float | Fraction) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _decimal(value: Decimal) -> str:
    return f"{value:.2f}"


def _median(ordered: Sequence[Decimal]) -> Decimal:
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _safe_id(chart_id: str) -> str:
    """An id attribute made only of safe characters (ids come from stage ids)."""
    return "chart-" + (re.sub(r"[^A-Za-z0-9_-]", "-", chart_id) or "x")


def dashboard_charts(*, funnel: Sequence[FunnelBar], distributions: Sequence[ScoreSet],
                     progress: Sequence[tuple[str, Sequence[ReviewerLoad]]],
                     _: Translate = english) -> dict[str, object]:
    """The variables of ``stages/_charts.html``: the funnel, a score chart per stage and a
    progress chart per stage (``progress``: stage title and its reviewers' loads)."""
    return {
        "funnel": funnel_chart(funnel, _=_),
        "distributions": [score_chart(scores, _=_, chart_id=f"scores-{index}")
                          for index, scores in enumerate(distributions)],
        "progress": [progress_chart(loads, stage=stage, _=_, chart_id=f"progress-{index}")
                     for index, (stage, loads) in enumerate(progress)],
    }


def for_dashboard(rounds: StageRounds, programme: Programme, views: Sequence[RoundView],
                  *, locale: str, _: Translate = english) -> dict[str, object]:
    """The ``stages/_charts.html`` variables of a programme's dashboard, read through the stage
    rounds service (the caller has authorized ``stage:view``): the funnel, a score strip per
    stage with a ranking (on 0-100: the composite, or the panel's score as per cent of its
    scale; disqualified submissions left out; the cut between the last passing and the first
    other score), and the reviewers' progress per stage with a panel."""
    funnel = [FunnelBar(step.stage.title(locale), step.entered, step.passed,
                        future=step.state is RoundState.OPEN and not step.entered)
              for step in rounds.funnel(programme)]
    distributions = []
    for view in views:
        scored = view.stage.scoring is not None and (
            view.state is not RoundState.OPEN or any(p.submitted for p in view.progress))
        if not scored:
            continue
        try:
            ranking = rounds.ranking(programme, view.stage.id)
        except DomainError:
            continue  # nothing to rank yet: the round's page says why
        entries = [e for e in ranking.result.entries if e.disqualified_reason is None]
        scores = [e.composite if e.composite is not None else e.normalised for e in entries]
        values = [score for score in scores if score is not None]
        passing = sum(e.outcome in (Outcome.PASS, Outcome.SELECTED) for e in entries)
        cut = cut_between(values, passing) if view.state is not RoundState.OPEN else None
        distributions.append(ScoreSet(view.stage.title(locale), values, cut))
    progress = [(view.stage.title(locale),
                 [ReviewerLoad(p.name, p.submitted, p.drafts,
                               max(p.assigned - p.submitted - p.drafts, 0))
                  for p in view.progress])
                for view in views if view.progress]
    return dashboard_charts(funnel=funnel, distributions=distributions, progress=progress, _=_)
