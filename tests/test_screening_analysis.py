"""Sandboxed PDF analysis for screening: the facts of each kind of file, limits, no network."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pypdf
import pypdf.filters
import pytest

from tests import sandbox_targets
from tests import screening_corpus as corpus
from vault.programmes.definition import Heading, PdfRules
from vault.sandbox import Limits, network_filter, run_limited
from vault.screening.analysis import ANALYSIS_LIMITS, PdfFacts, analyse_pdf, facts_of

OVERVIEW = Heading(ko="사업 개요", en="Project overview")
TEAM = Heading(ko="추진 체계", en="Team and partners")
BUDGET = Heading(ko="예산 계획", en="Budget plan")
RULES = PdfRules(min_pages=1, max_pages=40, page_size="A4", headings=(OVERVIEW, TEAM, BUDGET),
                 signature_required=True)
LIMITS = dict(cpu_seconds=5, memory_bytes=1024**3, wall_seconds=10)
ROOT = Path(__file__).resolve().parent.parent


def facts(**changes: object) -> PdfFacts:
    """The facts of a readable 3-page A4 PDF without findings, with ``changes``."""
    base = PdfFacts(unreadable=None, encrypted=False, page_count=3, page_size="595×842 pt",
                    off_size_pages=(), off_size_count=0, headings_missing=(),
                    has_signature_field=False, signed=False)
    return dataclasses.replace(base, **changes)


def unreadable(reason: str) -> PdfFacts:
    """The facts of a file that could not be read, for ``reason``."""
    return PdfFacts(unreadable=reason, encrypted=False, page_count=None, page_size=None,
                    off_size_pages=(), off_size_count=0, headings_missing=(),
                    has_signature_field=False, signed=False)


# -- readable PDFs ------------------------------------------------------------------------

def test_a_valid_signed_proposal_of_realistic_size_has_no_findings():
    data = corpus.text_pdf(40, headings=RULES.headings, signed=True, padding_kb=400)
    assert 400_000 < len(data) < 1_000_000
    assert analyse_pdf(data, RULES) == facts(page_count=40, has_signature_field=True,
                                             signed=True)


def test_headings_are_found_in_korean_or_english_whatever_the_case_and_width():
    wide = "Ｂｕｄｇｅｔ　Ｐｌａｎ"  # full-width letters and space
    data = corpus.text_pdf(3, headings=["1. 사업 개요", "TEAM AND PARTNERS", wide])
    assert analyse_pdf(data, RULES).headings_missing == ()


def test_a_missing_heading_is_reported_in_both_languages():
    data = corpus.text_pdf(5, headings=[OVERVIEW, BUDGET])
    found = analyse_pdf(data, RULES)
    assert found.headings_missing == (TEAM,)
    assert found.page_count == 5


def test_headings_are_not_looked_for_when_the_rules_name_none():
    data = corpus.text_pdf(2)
    assert analyse_pdf(data, PdfRules()) == facts(page_count=2)


def test_the_page_count_is_counted_beyond_the_limit():
    assert analyse_pdf(corpus.text_pdf(45, headings=RULES.headings), RULES).page_count == 45


def test_letter_pages_are_reported_against_an_a4_rule():
    found = analyse_pdf(corpus.text_pdf(3, size="Letter"), PdfRules(page_size="A4"))
    assert found == facts(page_size="612×792 pt", off_size_pages=(1, 2, 3), off_size_count=3)


def test_either_orientation_and_small_deviations_match_the_page_size():
    data = corpus.text_pdf(4, rotate=90, page_sizes={2: "Letter", 3: (597.0, 839.5),
                                                     4: (841.89, 595.276)})
    found = analyse_pdf(data, PdfRules(page_size="A4"))
    assert found == facts(page_count=4, page_size="792×612 pt", off_size_pages=(2,),
                          off_size_count=1)
    # Without a size rule: page 1's size as displayed (rotated), and nothing off-size.
    assert analyse_pdf(data, PdfRules()) == facts(page_count=4, page_size="842×595 pt")


def test_only_the_first_twenty_off_size_pages_are_listed_but_all_are_counted():
    found = analyse_pdf(corpus.text_pdf(25, size="Letter", filler_lines=2),
                        PdfRules(page_size="A4"))
    assert found.off_size_pages == tuple(range(1, 21))
    assert found.off_size_count == 25


@pytest.mark.parametrize(("signature", "signed", "expected"), [
    (False, False, (False, False)),
    (True, False, (True, False)),
    (True, True, (True, True)),
])
def test_the_signature_field_and_its_value_are_reported(signature, signed, expected):
    found = analyse_pdf(corpus.text_pdf(2, signature=signature, signed=signed), RULES)
    assert (found.has_signature_field, found.signed) == expected


@pytest.mark.parametrize("signature", [True, False])
def test_a_form_field_tree_that_loops_ends(signature):
    started = time.monotonic()
    found = analyse_pdf(corpus.field_loop_pdf(signature=signature), PdfRules())
    assert time.monotonic() - started < 5
    assert found == facts(page_count=1, has_signature_field=signature)


def test_an_encrypted_pdf_is_reported_and_not_opened():
    found = analyse_pdf(corpus.encrypted_pdf(), RULES)
    assert found == PdfFacts(unreadable=None, encrypted=True, page_count=None, page_size=None,
                             off_size_pages=(), off_size_count=0, headings_missing=(),
                             has_signature_field=False, signed=False)


# -- unreadable files ---------------------------------------------------------------------

@pytest.mark.parametrize("data", [corpus.png_as_pdf(), corpus.html_as_pdf(), b""],
                         ids=["png", "html", "empty"])
def test_files_that_are_no_pdf_are_reported_as_such(data):
    assert analyse_pdf(data, RULES) == unreadable("not a PDF")


@pytest.mark.parametrize("data", [corpus.corrupt_pdf(), corpus.garbage_pdf()],
                         ids=["truncated", "garbage"])
def test_a_corrupt_pdf_is_damaged(data):
    assert analyse_pdf(data, RULES) == unreadable("damaged: EOF marker not found")


def test_a_page_tree_that_loops_is_damaged_and_found_quickly():
    started = time.monotonic()
    found = analyse_pdf(corpus.loop_pdf(), RULES)
    assert time.monotonic() - started < 5
    assert found == unreadable("damaged: Detected cyclic page references.")


def test_a_decompression_bomb_is_unreadable_within_seconds():
    data = corpus.bomb_pdf()  # 4 GiB of zeros in about 4 MB
    assert len(data) < 5_000_000
    started = time.monotonic()
    # Without headings to look for too: every page's content is decoded all the same.
    for rules in (RULES, PdfRules()):
        found = analyse_pdf(data, rules)
        assert found.unreadable is not None
        assert found.unreadable.startswith("damaged: Limit reached while decompressing")
    assert time.monotonic() - started < 10


def test_a_pdf_without_pages_is_damaged():
    data = corpus.assemble({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", 3: b"(no page)"})
    assert analyse_pdf(data, RULES) == unreadable("damaged: no pages")


def test_a_parser_message_does_not_quote_the_file():
    data = corpus.assemble({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                            2: b"Confidential partner Hanbit"})
    reason = facts_of(data, RULES).unreadable
    assert reason is not None and reason.startswith("damaged: Invalid Elementary Object")
    assert "Hanbit" not in reason and "Confidential" not in reason


# -- limits -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def heavy_pdf() -> bytes:
    """A PDF that takes about 4 s of CPU: a heading is missing, so all its text is read."""
    return corpus.text_pdf(200, filler_lines=400)


@pytest.fixture(scope="module")
def greedy_pdf() -> bytes:
    """A PDF whose one content stream inflates to 64 MiB, under pypdf's own 75 MB limit.

    Reading its text needs more memory at once than the test allows, within a fraction of a
    second of CPU: the memory limit is reached long before the CPU limit, however busy the
    machine (the heavy PDF reached it only after about 2 s of CPU, too near to 5 s).
    """
    return corpus.bomb_pdf(64 * 1024**2)


@pytest.mark.parametrize(("pdf", "limits", "reason"), [
    ("heavy_pdf", Limits(cpu_seconds=1, memory_bytes=768 * 1024**2, wall_seconds=10),
     "cpu limit exceeded"),
    ("heavy_pdf", Limits(cpu_seconds=5, memory_bytes=768 * 1024**2, wall_seconds=0.3),
     "timed out after 0.3 s"),
    ("greedy_pdf", Limits(cpu_seconds=5, memory_bytes=64 * 1024**2, wall_seconds=10),
     "memory limit exceeded"),
], ids=["cpu", "wall", "memory"])
def test_a_child_stopped_by_a_limit_gives_an_unreadable_file_and_the_caller_goes_on(
        request, pdf, limits, reason):
    data = request.getfixturevalue(pdf)
    assert analyse_pdf(data, RULES, limits=limits) == unreadable(reason)
    assert multiprocessing.active_children() == []
    assert analyse_pdf(corpus.text_pdf(1), PdfRules()) == facts(page_count=1)


def test_the_default_limits():
    limits = ANALYSIS_LIMITS
    assert (limits.cpu_seconds, limits.memory_bytes, limits.wall_seconds) == (
        20, 768 * 1024**2, 30.0)


def test_pypdf_keeps_its_own_limits_in_the_child_and_here():
    defaults = dataclasses.asdict(pypdf.Configuration())
    assert run_limited(sandbox_targets.pypdf_configuration, **LIMITS) == defaults
    assert sandbox_targets.pypdf_configuration() == defaults
    assert defaults["zlib_maximum_output_length"] == 75_000_000
    assert pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH == 75_000_000


# -- no network in the child --------------------------------------------------------------

def test_the_child_cannot_open_network_sockets_but_unix_pipes_work():
    outcomes = run_limited(sandbox_targets.open_sockets, "127.0.0.1", 5432, **LIMITS)
    assert outcomes == {"inet": "EACCES", "inet6": "EACCES", "netlink": "EACCES",
                        "packet": "EACCES", "connect": "EACCES", "unix": "ok"}


def test_the_caller_itself_keeps_its_network():
    outcomes = sandbox_targets.open_sockets("127.0.0.1", 9)
    assert outcomes["inet"] == "ok"


def test_without_a_filter_for_the_machine_the_child_refuses_to_run():
    with pytest.raises(OSError, match="no seccomp filter for riscv64"):
        network_filter("riscv64")
    # The child's entry point on a machine it has no filter for: it answers without reading
    # the call (run in a separate interpreter, as it changes the process for good).
    script = textwrap.dedent("""
        import multiprocessing, platform
        from vault import sandbox
        platform.machine = lambda: "riscv64"
        receiver, sender = multiprocessing.Pipe(duplex=False)
        arguments, feeder = multiprocessing.Pipe(duplex=False)
        sandbox._child_main(sender, arguments, 5, 1024**3, 10)
        print(receiver.recv(), arguments.poll())
        try:
            sandbox._unpack(("isolation",), 0, (), 10)
        except sandbox.SandboxError as exc:
            print(exc.reason)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=True)
    assert done.stdout.splitlines() == ["('isolation',) False", "network isolation unavailable"]


# -- the facts as JSON --------------------------------------------------------------------

def test_facts_round_trip_through_compact_json_without_document_text():
    data = corpus.text_pdf(3, headings=[OVERVIEW], size="Letter", signature=True)
    found = analyse_pdf(data, RULES)
    assert found.headings_missing == (TEAM, BUDGET)
    text = found.to_json()
    assert PdfFacts.from_json(text) == found
    assert ": " not in text and ", " not in text.replace("예산 계획", "")
    assert "사업 개요" not in text and "hatrider" not in text  # found heading, body text
    assert json.loads(text)["headings_missing"] == [["추진 체계", "Team and partners"],
                                                   ["예산 계획", "Budget plan"]]
    for other in (unreadable("damaged: no pages"), facts(encrypted=True, page_count=None)):
        assert PdfFacts.from_json(other.to_json()) == other


@pytest.mark.parametrize("text", [
    "", "[]", "{}", '{"unreadable": null}',
    facts().to_json().replace('"page_count":3', '"page_count":true'),
    facts().to_json().replace('"encrypted":false', '"encrypted":0'),
    facts().to_json().replace('"headings_missing":[]', '"headings_missing":[[1,2]]'),
])
def test_anything_but_facts_json_is_refused(text):
    with pytest.raises(ValueError, match="not PDF facts"):
        PdfFacts.from_json(text)
