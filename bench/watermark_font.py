"""What embedding the Korean font costs a watermarked copy: bytes per copy and stamping time.

A stamp whose reader's name is not Latin draws those characters with a subset of Nanum Gothic
embedded in the copy (``vault/documents/watermark.py``). The baseline, measured in the same
run, is the stamp as it was before: the same text set in HYGoThic-Medium, a predefined CJK font
that is only referenced (nothing embedded; viewers without Korean fonts draw a blank gap). It
is reproduced here (``referenced_form``) and swapped in for the vault's own form builder.

For a one-page PDF and a realistic 100-page one (``bench/watermark.py``'s document) it prints:

  - bytes each copy grows by, for a Latin name (Helvetica only, nothing embedded), and for
    Korean names of 3 to 20 syllables with the referenced font and with the embedded subset,
    and what embedding adds over the referenced font (the same for any page count: the font
    is one object shared by every page);
  - the median of interleaved rounds [best] of sandboxed stamping (``stamp_pdf_limited``, as
    the web layer calls it) with the referenced font and with the embedded subset, the latter
    for a reader's first copy in the process (the subset is cut) and for the next ones (it is
    kept), and the ratios;
  - CPU time and peak memory of one sandboxed child that cuts the subset itself (the worst
    case), against the stamping limits; and the time to cut one subset in this process.

    .venv/bin/python bench/watermark_font.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from unittest import mock

from pypdf import PdfReader, PdfWriter

# bench/watermark.py, beside this script (the script's folder is first on the import path)
from watermark import build_document

from vault.documents import watermark as vault_watermark
from vault.documents.watermark import Stamp, stamp_pdf, stamp_pdf_limited
from vault.sandbox import Limits, run_limited

ISSUED = datetime(2025, 3, 1, 9, 30, 12, tzinfo=UTC)
NAMES = {
    "Latin": "Seoyeon Kim",
    "Korean, 3 syllables": "김서연",
    "mixed, 6 syllables": "Kim 김서연 (연구원)",
    "Korean, 20 syllables": "남궁민수 (한국인공지능안전연구소 선임연구원)",
}


def stamp_for(name: str) -> Stamp:
    """The stamp a reader called ``name`` gets."""
    return Stamp(name=name, user_id="u-7f3a9c21", issued_at=ISSUED, code="EV-20250301-0042")


# -- the baseline: the stamp as it was, with a referenced CJK font -------------------------

def referenced_runs(text: str) -> list[tuple[str, bytes, float]]:
    """Runs as before: WinAnsi in Helvetica, the rest as UCS-2 codes of 1 em (no font data)."""
    runs: list[tuple[str, bytes, float]] = []
    for ch in text:
        try:
            code, font, width = ch.encode("cp1252"), "/F1", vault_watermark._latin_width(ch) / 1000
        except UnicodeEncodeError:
            code, font, width = ch.encode("utf-16-be"), "/F2", 1.0
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + code, runs[-1][2] + width)
        else:
            runs.append((font, code, width))
    return runs


def referenced_korean(writer: PdfWriter, chars: set[str]):
    """HYGoThic-Medium, predefined Adobe-Korea1, referenced only, with a /ToUnicode CMap."""
    pdf, add, stream = vault_watermark._pdf, vault_watermark._add, vault_watermark._stream
    pairs = sorted(f"<{ord(ch):04X}> <{ord(ch):04X}>" for ch in chars)
    to_unicode = "\n".join([
        "/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
        "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange",
        f"{len(pairs)} beginbfchar", *pairs, "endbfchar",
        "endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end",
    ]).encode()
    descriptor = add(writer, pdf({
        "/Type": "/FontDescriptor", "/FontName": "/HYGoThic-Medium", "/Flags": 4,
        "/FontBBox": (-6, -145, 1003, 880), "/ItalicAngle": 0, "/Ascent": 880,
        "/Descent": -120, "/CapHeight": 880, "/StemV": 59}))
    return add(writer, pdf({
        "/Type": "/Font", "/Subtype": "/Type0", "/BaseFont": "/HYGoThic-Medium-UniKS-UCS2-H",
        "/Encoding": "/UniKS-UCS2-H",
        "/DescendantFonts": [{
            "/Type": "/Font", "/Subtype": "/CIDFontType0", "/BaseFont": "/HYGoThic-Medium",
            "/CIDSystemInfo": {"/Registry": "Adobe", "/Ordering": "Korea1", "/Supplement": 1},
            "/FontDescriptor": descriptor, "/DW": 1000}],
        "/ToUnicode": add(writer, stream(to_unicode, {})),
    }))


def referenced_form(writer: PdfWriter, stamp: Stamp):
    """The stamp's form XObject as it was built before the font was embedded."""
    num, sizes, leading = vault_watermark._num, vault_watermark._SIZES, vault_watermark._LEADING
    lines = [referenced_runs(vault_watermark._clean(line)) for line in stamp.lines()]
    widths = [sum(width for _, _, width in runs) * size
              for runs, size in zip(lines, sizes, strict=True)]
    bottom, top = -0.25 * sizes[1], leading + 0.9 * sizes[0]
    shift = -(bottom + top) / 2
    ops = [b"q /VaultGS gs 0.45 g BT"]
    for runs, size, width, y in zip(lines, sizes, widths, (leading + shift, shift), strict=True):
        ops.append(f"1 0 0 1 {num(-width / 2)} {num(y)} Tm".encode())
        for font, code, _ in runs:
            ops.append(f"{font} {num(size)} Tf <".encode() + code.hex().encode() + b"> Tj")
    ops.append(b"ET Q")
    half_width, half_height = max(widths) / 2 + 2, (top - bottom) / 2 + 2
    fonts = {"/F1": vault_watermark._add(writer, vault_watermark._pdf({
        "/Type": "/Font", "/Subtype": "/Type1", "/BaseFont": "/Helvetica",
        "/Encoding": "/WinAnsiEncoding"}))}
    cjk = {ch for runs in lines for font, code, _ in runs if font == "/F2"
           for ch in code.decode("utf-16-be")}
    if cjk:
        fonts["/F2"] = referenced_korean(writer, cjk)
    bbox = (-half_width, -half_height, half_width, half_height)
    form = vault_watermark._stream(b"\n".join(ops), {
        "/Type": "/XObject", "/Subtype": "/Form", "/BBox": bbox,
        "/Resources": {"/Font": fonts, "/ExtGState": {"/VaultGS": {
            "/Type": "/ExtGState", "/ca": 0.35}}},
    })
    return vault_watermark._add(writer, form), bbox


def stamp_referenced(data: bytes, stamp: Stamp) -> bytes:
    """``stamp_pdf`` with the baseline's form (module-level: it runs in sandbox children)."""
    with mock.patch.object(vault_watermark, "_form", referenced_form):
        return stamp_pdf(data, stamp)


def stamp_referenced_limited(data: bytes, stamp: Stamp) -> bytes:
    """The baseline through the sandbox with the same limits as the vault's stamping."""
    limits = Limits()
    return run_limited(stamp_referenced, data, stamp, cpu_seconds=limits.cpu_seconds,
                       memory_bytes=limits.memory_bytes, wall_seconds=limits.wall_seconds)


def first_copy(data: bytes, stamp: Stamp) -> bytes:
    """A reader's first copy in this process: the font subset is cut before the sandbox call."""
    with vault_watermark._SUBSETS_LOCK:
        vault_watermark._SUBSETS.clear()
    return stamp_pdf_limited(data, stamp)


def child_usage(data: bytes, stamp: Stamp) -> tuple[float, int]:
    """In a sandbox child: stamp, then report CPU seconds and peak RSS (KiB) of the child."""
    stamp_pdf(data, stamp)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


# -- measuring -----------------------------------------------------------------------------

def measure(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Each contender once per round, in a rotating order; seconds per call."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: the fork server, first-use costs
        contenders[name]()
    for round_ in range(rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def one_page() -> bytes:
    """A blank A4 page."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    options = parser.parse_args()
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")

    documents = {"1 page": one_page(), "100 pages": build_document(100)}
    print("watermark font: bytes each copy grows by (stamped - original)")
    print(f"  {'reader name':<24} {'document':<10} {'referenced':>11} {'embedded':>9} "
          f"{'embedding adds':>15}")
    for label, name in NAMES.items():
        stamp = stamp_for(name)
        for document, data in documents.items():
            referenced = len(stamp_referenced(data, stamp)) - len(data)
            stamped = stamp_pdf(data, stamp)
            embedded = len(stamped) - len(data)
            if name not in PdfReader(io.BytesIO(stamped)).pages[0].extract_text():
                raise SystemExit(f"{label}: the name does not extract from the stamped copy")
            print(f"  {label:<24} {document:<10} {referenced:>11,} {embedded:>9,} "
                  f"{embedded - referenced:>+15,}")

    print(f"sandboxed stamping (stamp_pdf_limited), median of {options.rounds} interleaved "
          f"rounds [best]")
    korean = stamp_for(NAMES["mixed, 6 syllables"])
    latin = stamp_for(NAMES["Latin"])
    for document, data in documents.items():
        times = measure({
            "latin": lambda data=data: stamp_pdf_limited(data, latin),
            "referenced": lambda data=data: stamp_referenced_limited(data, korean),
            "first": lambda data=data: first_copy(data, korean),
            "next": lambda data=data: stamp_pdf_limited(data, korean),
        }, options.rounds)
        median = {name: statistics.median(values) * 1000 for name, values in times.items()}
        best = {name: min(values) * 1000 for name, values in times.items()}
        for name, text in (("latin", "Latin name"), ("referenced", "Korean, referenced font"),
                           ("first", "Korean, embedded, 1st copy"),
                           ("next", "Korean, embedded, next")):
            print(f"  {document:<10} {text:<28} {median[name]:8.1f} ms [{best[name]:7.1f}]")
        for name, text in (("first", "1st copy / referenced"), ("next", "next / referenced")):
            print(f"  {document:<10} {text:<28} "
                  f"{median[name] / median['referenced']:8.2f}    "
                  f"[{best[name] / best['referenced']:7.2f}]   "
                  f"({median[name] - median['referenced']:+.1f} ms)")

    # The worst case for the child: the subset cut there (as stamp_pdf does in process).
    limits = Limits()
    for label, stamp in (("Latin name", latin), ("Korean, cut in the child", korean)):
        cpu, peak = run_limited(child_usage, documents["100 pages"], stamp,
                                cpu_seconds=limits.cpu_seconds,
                                memory_bytes=limits.memory_bytes,
                                wall_seconds=limits.wall_seconds)
        print(f"  one sandboxed child, 100 pages, {label:<24} CPU {cpu * 1000:6.0f} ms "
              f"(limit {limits.cpu_seconds} s), peak RSS {peak / 1024:5.0f} MiB "
              f"(limit {limits.memory_bytes / 2**20:.0f} MiB address space)")
    cuts = []
    for _ in range(options.rounds):
        start = time.perf_counter()
        vault_watermark._cut(frozenset("김서연구원"))
        cuts.append(time.perf_counter() - start)
    print(f"  cutting one subset in process: median {statistics.median(cuts) * 1000:.1f} ms "
          f"[{min(cuts) * 1000:.1f}]")


if __name__ == "__main__":
    main()
