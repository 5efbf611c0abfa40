"""Watermark speed and size: the vault's pypdf stamping vs pikepdf (qpdf) overlaying the same stamp.

Every PDF a reviewer opens is stamped per request with one shared form XObject drawn on every
page (``vault/documents/watermark.py``). This builds a realistic 100-page PDF in memory (text in
three standard fonts on every page, vector charts on every other page, a noise image on every
tenth page, about 2 MiB) and times, interleaved, the median of the rounds [best]:

  (a) ``stamp_pdf`` in this process;
  (b) ``stamp_pdf_limited``: the same through the sandbox (a forkserver child with CPU, memory
      and time limits; the PDF goes there and back over a pipe);
  (c) pikepdf: open, ``Page.add_overlay`` of the same stamp on every page, save to memory. The
      stamp is a one-page PDF stamped by the vault's own code and copied in once as a form
      XObject, so pikepdf too draws one shared object (its build is not timed).

The reader's name is Korean, so (a) and (b) include cutting the embedded font subset (about
60-75 ms; ``bench/watermark_font.py`` measures it against the referenced font it replaced),
which pikepdf's prebuilt stamp does not. It also times the sandbox's bare round trip (``len``
of the PDF in a child). Targets (the watermark's requirements): time of (a) and (b) <= 1.5 x
(c); size growth <= 10 %. The verdicts use the medians; on a busy machine they swing (pure
Python suffers more from preemption than qpdf), and the best times, in brackets, are the
steadier comparison.

    .venv/bin/python bench/watermark.py [--rounds N] [--pages N]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
)

from vault.documents.watermark import Stamp, stamp_pdf, stamp_pdf_limited
from vault.sandbox import Limits, run_limited

TIME_TARGET = 1.5
GROWTH_TARGET = 10.0
STAMP = Stamp(name="김서연 (Seoyeon Kim)", user_id="u-7f3a9c21", code="EV-20250301-0042",
              issued_at=datetime(2025, 3, 1, 9, 30, 12, tzinfo=UTC))
WORDS = ("model", "evaluation", "compute", "sovereign", "dataset", "training", "tokens",
         "benchmark", "cluster", "safety", "alignment", "inference", "latency", "throughput",
         "consortium", "budget", "milestone", "governance", "audit", "deployment", "multilingual",
         "Korean", "corpus", "annotation", "licensing", "schedule", "risk", "mitigation",
         "partner", "infrastructure", "accelerator", "procurement", "reproducibility")


# -- the document ------------------------------------------------------------------------

def _stream(content: bytes, entries: dict | None = None) -> StreamObject:
    stream = DecodedStreamObject()
    stream.update({NameObject(k): v for k, v in (entries or {}).items()})
    stream.set_data(content)
    return stream.flate_encode()


def _text(rng: random.Random, number: int) -> bytes:
    """A page of body text set with TJ kerning arrays, as word processors write it."""
    ops = [f"BT /F3 16 Tf 72 740 Td (Section {number}: {rng.choice(WORDS).title()}) Tj ET",
           "BT /F1 10 Tf 13 TL 72 710 Td"]
    for _ in range(46):
        words = [rng.choice(WORDS) for _ in range(rng.randint(9, 13))]
        kerned = " ".join(f"({w} )-{rng.randint(5, 40)}" for w in words)
        ops.append(f"[{kerned}] TJ T*")
    ops.append("ET BT /F2 9 Tf 300 40 Td (Page " + str(number) + ") Tj ET")
    return "\n".join(ops).encode()


def _chart(rng: random.Random) -> bytes:
    """A bar chart with axes and a curve: vector graphics in their own q ... Q."""
    ops = ["q 0.5 w 0 0 0 RG 90 120 m 90 320 l 520 320 l S"]
    for i in range(24):
        height = rng.uniform(10, 180)
        ops.append(f"{rng.random():.2f} 0.4 0.7 rg {100 + i * 17} 120 12 {height:.1f} re f")
    ops.append("1 0 0 RG 1.5 w 90 150 m")
    ops.extend(f"{100 + i * 40} {rng.uniform(140, 300):.1f} {120 + i * 40} "
               f"{rng.uniform(140, 300):.1f} {130 + i * 40} {rng.uniform(140, 300):.1f} c"
               for i in range(10))
    ops.append("S Q")
    return "\n".join(ops).encode()


def build_document(pages: int, seed: int = 7) -> bytes:
    """A ``pages``-page PDF of text, charts and a few photos (incompressible noise)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible filler text, not a secret
    writer = PdfWriter()
    fonts = DictionaryObject({
        NameObject(f"/F{i}"): writer._add_object(DictionaryObject({
            NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject(base),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding")}))
        for i, base in enumerate(("/Times-Roman", "/Helvetica", "/Helvetica-Bold"), start=1)})
    for number in range(1, pages + 1):
        page = writer.add_blank_page(595, 842)
        resources = DictionaryObject({NameObject("/Font"): fonts})
        content = _text(rng, number)
        if number % 2 == 0:
            content += b"\n" + _chart(rng)
        if number % 10 == 0:
            image = _stream(rng.randbytes(300 * 200 * 3), {
                "/Type": NameObject("/XObject"), "/Subtype": NameObject("/Image"),
                "/Width": NumberObject(300), "/Height": NumberObject(200),
                "/ColorSpace": NameObject("/DeviceRGB"), "/BitsPerComponent": NumberObject(8)})
            resources[NameObject("/XObject")] = DictionaryObject(
                {NameObject("/Im1"): writer._add_object(image)})
            content += b"\nq 300 0 0 200 150 400 cm /Im1 Do Q"
        page[NameObject("/Resources")] = resources
        page[NameObject("/Contents")] = writer._add_object(_stream(content))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- the contenders ----------------------------------------------------------------------

def stamp_page() -> bytes:
    """The stamp alone, as a one-page A4 PDF made by the vault's own code (for pikepdf)."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    blank = io.BytesIO()
    writer.write(blank)
    return stamp_pdf(blank.getvalue(), STAMP)


def pikepdf_overlay(data: bytes, overlay: bytes) -> bytes:
    """pikepdf: open, overlay one shared form XObject on every page, save to memory."""
    # Imported here, not at the top: the sandbox's fork server preloads the main script's
    # imports, and pikepdf in every child would not be the vault's production set-up.
    import pikepdf
    with pikepdf.open(io.BytesIO(data)) as pdf, pikepdf.open(io.BytesIO(overlay)) as stamp:
        form = pdf.copy_foreign(stamp.pages[0].as_form_xobject())
        for page in pdf.pages:
            page.add_overlay(form)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def sandbox_round_trip(data: bytes) -> int:
    """The sandbox alone: the PDF to a child and its length back."""
    limits = Limits()
    return run_limited(len, data, cpu_seconds=limits.cpu_seconds,
                       memory_bytes=limits.memory_bytes, wall_seconds=limits.wall_seconds)


def measure(contenders: dict[str, Callable[[], bytes | int]], rounds: int
            ) -> dict[str, list[float]]:
    """Each contender once per round, in a rotating order; seconds per call."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: imports, the fork server, first-use costs
        contenders[name]()
    for round_ in range(rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--pages", type=int, default=100, help="pages (default 100)")
    options = parser.parse_args()
    if options.rounds < 1 or options.pages < 1:
        parser.error("--rounds and --pages must be at least 1")

    data = build_document(options.pages)
    overlay = stamp_page()
    stamped = stamp_pdf(data, STAMP)
    overlaid = pikepdf_overlay(data, overlay)
    for label, output in (("vault", stamped), ("pikepdf", overlaid)):
        pages = PdfReader(io.BytesIO(output)).pages
        if len(pages) != options.pages or STAMP.code not in pages[-1].extract_text():
            raise SystemExit(f"{label}: the stamp is missing from the output")
    times = measure({
        "vault": lambda: stamp_pdf(data, STAMP),
        "vault-sandbox": lambda: stamp_pdf_limited(data, STAMP),
        "pikepdf": lambda: pikepdf_overlay(data, overlay),
        "sandbox-only": lambda: sandbox_round_trip(data),
    }, options.rounds)

    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    best = {name: min(values) * 1000 for name, values in times.items()}
    print(f"watermark: {options.pages}-page PDF of {len(data) / 2**20:.2f} MiB "
          f"(zlib {zlib.ZLIB_RUNTIME_VERSION}, {os.cpu_count()} CPUs); median of "
          f"{options.rounds} interleaved rounds [best]")
    labels = {"vault": "(a) vault stamp_pdf, in process",
              "vault-sandbox": "(b) vault stamp_pdf_limited, sandboxed",
              "pikepdf": "(c) pikepdf add_overlay + save",
              "sandbox-only": "    sandbox round trip alone (len)"}
    for name, text in labels.items():
        print(f"  {text:<42} {median[name]:8.1f} ms [{best[name]:7.1f}]")
    verdicts = []
    for name in ("vault", "vault-sandbox"):
        ratio = median[name] / median["pikepdf"]
        best_ratio = best[name] / best["pikepdf"]
        print(f"  {name + ' / pikepdf':<42} {ratio:8.2f}    [{best_ratio:7.2f}]   "
              f"target <= {TIME_TARGET}")
        verdicts.append((f"time {name}/pikepdf {ratio:.2f} (target <= {TIME_TARGET})",
                         ratio <= TIME_TARGET))
    for label, output in (("vault", stamped), ("pikepdf", overlaid)):
        growth = (len(output) - len(data)) / len(data) * 100
        print(f"  size growth {label:<30} {growth:8.2f} %  "
              f"({len(data):,} -> {len(output):,} bytes)")
        if label == "vault":
            verdicts.append((f"size growth vault {growth:.2f} % (target <= {GROWTH_TARGET} %)",
                             growth <= GROWTH_TARGET))
    for text, ok in verdicts:
        print(f"  {'ok    ' if ok else 'MISSED'} {text}")


if __name__ == "__main__":
    main()
