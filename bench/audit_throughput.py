"""Audit log throughput: appends per second (1 and 4 writers on PostgreSQL) and the offline
verification of a 1,000,000-event bundle against plain hashlib over the same lines.

Targets (the audit log's requirements): at least 2,000 events/s with 4 writers; verifying a
bundle takes at most twice the time of recomputing its root with plain ``hashlib``.

    .venv/bin/python bench/audit_throughput.py [--events N] [--bundle N] [--pg URL]

Needs a PostgreSQL server (default ``postgresql://postgres@127.0.0.1:5432/test``); a scratch
database is created and dropped. Each writer commits every event, like a request does.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from vault import migrate
from vault.audit.service import AuditLog, Tag, canonical_json, rfc3339
from vault.audit.verify import CSV_COLUMNS, csv_lines, csv_row, verify_bundle
from vault.crypto import signed_note
from vault.db import make_engine, make_session_factory, unit_of_work
from vault.settings import Settings

SEQUENCE_INTERVAL = Settings.audit_sequence_interval


def _writer(url: str, count: int, ready, start) -> None:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    ready.set()
    start.wait()
    clock = lambda: datetime.now(UTC)  # noqa: E731
    last = 0.0
    for number in range(count):
        # As a request does: record with its change and commit, then — at most every
        # SEQUENCE_INTERVAL, as the web app does — sequence in its own short transaction,
        # placing every event waiting, from all workers, at once.
        with unit_of_work(sessions) as session:
            AuditLog(session, clock=clock).record(
                Tag.KEY_ROTATED, target={"key": f"consortium-{os.getpid()}", "n": number})
        if time.monotonic() - last >= SEQUENCE_INTERVAL:  # the web app's default
            last = time.monotonic()
            with unit_of_work(sessions) as session:
                AuditLog(session, clock=clock).sequence(wait=False)
    with unit_of_work(sessions) as session:
        AuditLog(session, clock=clock).sequence()
    engine.dispose()


def appends(url: str, writers: int, per_writer: int) -> float:
    """Events per second with ``writers`` processes appending concurrently."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    readies = [context.Event() for _ in range(writers)]
    processes = [context.Process(target=_writer, args=(url, per_writer, ready, start))
                 for ready in readies]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait()
    began = time.perf_counter()
    start.set()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    return writers * per_writer / (time.perf_counter() - began)


def make_bundle(path: Path, events: int) -> tuple[str, list[bytes]]:
    """A bundle of ``events`` synthetic events with a checkpoint signed by a fresh key."""
    skey, vkey = signed_note.generate_signer("bench.vault.localhost/log")
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    leaves = []
    for seq in range(events):
        leaves.append(canonical_json({
            "actor": {"role": "applicant", "user": "0" * 8 + "-0000-4000-8000-" + "0" * 12},
            "decision": "allow", "reasons": [], "real_actor": None,
            "request": {"client": "127.0.0.1", "id": f"{seq:032x}", "user_agent": "bench"},
            "seq": seq, "tag": "document:version:downloaded",
            "target": {"document": "d", "version": "1"},
            "time": rfc3339(moment + timedelta(microseconds=seq)),
        }))
    _size, root = _plain_root(leaves)
    note = signed_note.sign_note(
        signed_note.format_checkpoint("bench.vault.localhost/log", events, root), skey)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        data = b"".join(leaf + b"\n" for leaf in leaves)
        table = b"".join(csv_lines([CSV_COLUMNS], (csv_row(leaf) for leaf in leaves)))
        bundle.writestr("entries.jsonl", data)
        bundle.writestr("entries.csv", table)
        bundle.writestr("checkpoint", note)
        bundle.writestr("checkpoints", "")
        manifest = "".join(f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in
                           (("checkpoint", note.encode()), ("checkpoints", b""),
                            ("entries.csv", table), ("entries.jsonl", data)))
        bundle.writestr("MANIFEST.sha256", manifest)
    return vkey, leaves


def _plain_root(leaves: Iterable[bytes]) -> tuple[int, bytes]:
    """The RFC 6962 root with nothing but hashlib: the baseline."""
    sha = hashlib.sha256
    stack: list[tuple[int, bytes]] = []
    count = 0
    for leaf in leaves:
        count += 1
        size, value = 1, sha(b"\x00" + leaf).digest()
        while stack and stack[-1][0] == size:
            value = sha(b"\x01" + stack.pop()[1] + value).digest()
            size *= 2
        stack.append((size, value))
    value = stack[-1][1]
    for _size, left in reversed(stack[:-1]):
        value = sha(b"\x01" + left + value).digest()
    return count, value


def _file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for line in handle:
            yield line[:-1]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per writer")
    parser.add_argument("--bundle", type=int, default=1_000_000, help="events in the bundle")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    options = parser.parse_args()

    admin = create_engine(options.pg, isolation_level="AUTOCOMMIT")
    name = f"vault_bench_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(options.pg).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        one = appends(url, 1, options.events)
        four = appends(url, 4, options.events)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("audit log appends on PostgreSQL (each event committed in its own transaction, "
          f"sequenced every {SEQUENCE_INTERVAL * 1000:.0f} ms per writer)")
    print(f"  1 writer : {one:8.0f} events/s")
    verdict = "ok" if four >= 2000 else "MISSED"
    print(f"  4 writers: {four:8.0f} events/s   target >= 2000: {verdict}")

    with tempfile.TemporaryDirectory() as directory:
        bundle = Path(directory) / "bundle.zip"
        vkey, leaves = make_bundle(bundle, options.bundle)
        lines = Path(directory) / "entries.jsonl"
        lines.write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
        del leaves
        # The baseline reads the same lines from a plain file and folds them with hashlib.
        began = time.perf_counter()
        _plain_root(_file_lines(lines))
        plain = time.perf_counter() - began
        began = time.perf_counter()
        report = verify_bundle(bundle, vkey, check_csv=False)
        verify = time.perf_counter() - began
        began = time.perf_counter()
        verify_bundle(bundle, vkey)
        with_csv = time.perf_counter() - began
    assert report.size == options.bundle
    print(f"verifying a {options.bundle:,}-event bundle")
    print(f"  plain hashlib root over the same lines (read from a file): {plain:6.2f} s")
    print(f"  vault audit verify (zip, manifest, JSON checks, root, signature): {verify:6.2f} s"
          f"   ratio {verify / plain:4.2f}   target <= 2.0: "
          f"{'ok' if verify <= 2 * plain else 'MISSED'}")
    print(f"  ... and rebuilding the CSV view to compare it too:  {with_csv:6.2f} s")


if __name__ == "__main__":
    main()
