"""``vault demo simulate``: rehearse a programme's whole evaluation in a scratch copy.

The command never opens the operator's vault: it needs no settings, builds a temporary one
(see ``vault.rehearsal``), prints what happened and removes it. Standard output is the same
byte for byte for the same seed and definition; the phases are reported on standard error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from vault.programmes.definition import DefinitionError, load_definition
from vault.rehearsal.run import Options, Rehearsal, RehearsalStopped, rehearse

#: Width of the team column of the text output.
TEAM_WIDTH = 34


def to_json(rehearsal: Rehearsal) -> str:
    """One JSON document: the stages with their rankings and SHA-256, and the survivors."""
    return json.dumps({
        "programme": rehearsal.programme,
        "seed": rehearsal.seed,
        "reviewers": rehearsal.reviewers,
        "stages": [{
            "stage": report.stage, "title": report.title, "decision": report.decision,
            "result_sha256": report.result_sha256, "note": report.note or None,
            "ranking": [{"rank": row.rank, "team": row.team, "score": row.score,
                         "outcome": row.outcome} for row in report.rows],
        } for report in rehearsal.stages],
        "survivors": list(rehearsal.survivors),
    }, indent=2, ensure_ascii=False) + "\n"


def to_text(rehearsal: Rehearsal) -> str:
    """Each stage's ranking as a table, then the survivors."""
    lines = [f"Rehearsal of {rehearsal.programme}: seed {rehearsal.seed}, "
             f"{rehearsal.reviewers} reviewers per panel, in a scratch copy", ""]
    for report in rehearsal.stages:
        lines.append(f"{report.title} ({report.stage}, decided by {report.decision})")
        if report.note:
            lines += [f"  {report.note}", ""]
            continue
        lines.append(f"  {'rank':>4}  {'team':<{TEAM_WIDTH}} {'score':>8}  outcome")
        for row in report.rows:
            lines.append(f"  {row.rank:>4}  {row.team:<{TEAM_WIDTH}} {row.score or '-':>8}  "
                         f"{row.outcome}")
        lines += [f"  result sha256 {report.result_sha256}", ""]
    survivors = ", ".join(rehearsal.survivors) or "none"
    lines.append(f"Survivors ({len(rehearsal.survivors)}): {survivors}")
    return "\n".join(lines) + "\n"


def register(cli: click.Group, error: type[click.ClickException]) -> None:
    """Add ``vault demo simulate`` to the ``vault`` group."""

    @cli.group("demo")
    def demo_group() -> None:
        """The fictional demo programme: rehearsals of an evaluation."""

    # Without the application: a rehearsal must not need (nor touch) the operator's settings.
    @demo_group.command("simulate", with_appcontext=False)  # type: ignore[call-arg]
    @click.option("--seed", type=int, required=True,
                  help="Seed of the made-up scores; the same seed gives the same output.")
    @click.option("--format", "output_format", type=click.Choice(["text", "json"]),
                  default="text", show_default=True)
    @click.option("--reviewers", type=click.IntRange(1, 40), default=10, show_default=True,
                  help="Reviewers on every stage's panel.")
    @click.option("--definition", "definition_path",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Rehearse this programme definition file instead of the shipped one.")
    @click.option("--disqualify", is_flag=True,
                  help="Apply the first stage with a disqualification rule's first rule to a "
                       "team the seed picks.")
    def simulate(seed: int, output_format: str, reviewers: int, definition_path: Path | None,
                 disqualify: bool) -> None:
        """Run the programme's evaluation end to end on the demo's fifteen consortia in a
        temporary vault: screening, every stage's panel, sheets, imports, closing,
        confirmation and publication. Prints each stage's ranking and the survivors."""
        definition = None
        if definition_path is not None:
            try:
                definition = load_definition(definition_path)
            except (DefinitionError, OSError) as failure:
                raise error(str(failure)) from None
        options = Options(seed=seed, reviewers=reviewers, definition=definition,
                          disqualify=disqualify)
        try:
            result = rehearse(options, progress=lambda phase: click.echo(
                f"rehearsing: {phase}", err=True))
        except RehearsalStopped as failure:
            raise error(f"the rehearsal stopped at {failure}") from None
        click.echo(to_json(result) if output_format == "json" else to_text(result), nl=False)
