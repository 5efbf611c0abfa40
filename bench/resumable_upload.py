"""Resumable (tus) upload throughput against the ordinary upload of the same file, in one run.

A resumable upload seals every PATCH body into a segment blob as it streams in, then, on the
last byte, decrypts and verifies the segments and streams them through the ordinary store
pipeline (a second pass: neither the Cobblestone encryptor's nor SHA-256's state can be kept
between requests without keeping plaintext). This measures what that costs: one gunicorn
server configured as in production (``--workers 1 --worker-class gthread --threads 4``, the
same server as ``bench/store_throughput.py``) takes, for each round, a raw unencrypted PUT to
disk (``bench/_plain_app.py``), the vault's ordinary PUT, and the vault's tus upload in
PATCHes of ``--patch`` MiB, interleaved. It prints client-side MiB/s (median of the rounds,
best in brackets), the ratio to the ordinary upload, how long the completing PATCH took, and
the server worker's peak RSS growth during each upload (VmRSS sampled every 50 ms, the worst
round) and its VmHWM.

    .venv/bin/python bench/resumable_upload.py [--quick] [--rounds N] [--patch MiB] [--dir P]

``--quick`` uploads 256 MiB instead of 2 GiB. Needs about three times the size of free disk
(the segments and the finished blob coexist until the upload completes); everything is
removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.store_throughput import (
    KIND,
    MIB,
    RssMonitor,
    Samples,
    Server,
    create_token,
    discard_stored,
    label,
    payload,
    payload_sha256,
    request,
    upload,
)

TUS = {"Tus-Resumable": "1.0.0"}
ROOT = Path(__file__).resolve().parent.parent
PROGRAMME = "sovereign-ai-2025"


def prepare(workdir: Path) -> dict[str, str]:
    """A development vault with the demo data; the programme's files (the definition and the
    files it names, e.g. the NDA text) copied, with the proposal's limit raised to 2 GiB."""
    programmes = workdir / "programmes"
    shutil.copytree(ROOT / "policies" / "programmes", programmes)
    definition = programmes / f"{PROGRAMME}.toml"
    raised, count = re.subn(r'(id = "proposal"\n(?:(?!\[\[).*\n)*?max_size_mb = )\d+',
                            r"\g<1>2048", definition.read_text(encoding="utf-8"))
    if count != 1:
        raise SystemExit("could not raise the proposal size limit in the programme definition")
    definition.write_text(raised, encoding="utf-8")
    (workdir / "plain").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BENCH_"))}
    env.update(VAULT_MODE="development", VAULT_DATA_DIR=str(workdir / "data"),
               VAULT_PROGRAMMES_DIR=str(programmes), BENCH_PLAIN_DIR=str(workdir / "plain"),
               PYTHONUNBUFFERED="1")
    vault = Path(sys.executable).with_name("vault")
    subprocess.run([str(vault), "init", "--demo"], cwd=ROOT, env=env, check=True,  # noqa: S603
                   stdout=subprocess.DEVNULL)
    return env


def _send(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
          blocks: Callable[[], object] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    if blocks is not None:
        blocks()
    response = conn.getresponse()
    body = response.read()
    return response.status, dict(response.getheaders()), body


def tus_upload(port: int, auth: dict[str, str], submission_id: str, size: int, piece: int,
               name: str) -> tuple[float, dict]:
    """Create, PATCH ``piece`` bytes at a time over one keep-alive connection, read the
    receipt; returns seconds (all of it) and the receipt with the last PATCH's time."""
    meta = {"submission": submission_id, "kind": KIND, "filename": f"{name}.pdf",
            "filetype": "application/pdf"}
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    stream = payload(size)
    carry = memoryview(b"")
    try:
        start = time.perf_counter()
        status, headers, body = _send(conn, "POST", "/api/v1/uploads", {
            **auth, **TUS, "Upload-Length": str(size), "Upload-Metadata": metadata,
            "Content-Length": "0"})
        if status != 201:
            raise SystemExit(f"POST /api/v1/uploads answered {status}: {body[:300]!r}")
        location = headers["Location"]
        offset = 0
        last_patch = 0.0
        while offset < size:
            length = min(piece, size - offset)

            def send_piece(length: int = length) -> None:
                nonlocal carry
                left = length
                while left:
                    if not carry:
                        carry = memoryview(next(stream))
                    part, carry = carry[:left], carry[left:]
                    conn.send(part)
                    left -= len(part)

            patch_start = time.perf_counter()
            status, headers, body = _send(conn, "PATCH", location, {
                **auth, **TUS, "Upload-Offset": str(offset), "Content-Length": str(length),
                "Content-Type": "application/offset+octet-stream"}, send_piece)
            last_patch = time.perf_counter() - patch_start
            if status != 204:
                raise SystemExit(f"PATCH at {offset} answered {status}: {body[:300]!r}")
            offset = int(headers["Upload-Offset"])
        elapsed = time.perf_counter() - start
        status, _, body = _send(conn, "GET", location, {**auth, "Content-Length": "0"})
        receipt = json.loads(body)["receipt"]
    finally:
        conn.close()
    return elapsed, {**receipt, "last_patch_seconds": last_patch,
                     "header_sha256": headers.get("Upload-Receipt-Sha256")}


def measure(server: Server, token: str, submission_id: str, size: int, piece: int, rounds: int,
            monitor: RssMonitor, workdir: Path, *, verbose: bool = False
            ) -> tuple[dict[str, Samples], list[float]]:
    """Interleaved raw, ordinary and resumable uploads of ``size`` bytes, ``rounds`` times."""
    port = server.port
    auth = {"Authorization": f"Bearer {token}"}
    expected = payload_sha256(size)
    results: dict[str, Samples] = {}
    final_patch: list[float] = []
    name = label(size).replace(" ", "")
    put_headers = {**auth, "Content-Type": "application/pdf",
                   "Content-Disposition": f"attachment; filename*=UTF-8''bench-{name}.pdf"}
    for round_ in range(rounds):
        runs = [
            ("raw", "plain", partial(upload, port, f"/bench/plain-upload/r-{name}-{round_}.pdf",
                                     {"Content-Type": "application/pdf"}, size)),
            ("put", "vault", partial(upload, port,
                                     f"/api/v1/submissions/{submission_id}/documents/{KIND}",
                                     put_headers, size)),
            ("tus", "vault", partial(tus_upload, port, auth, submission_id, size, piece,
                                     f"bench-tus-{name}")),
        ]
        if round_ % 2:
            runs.reverse()
        for which, store, run in runs:
            discard_stored(workdir, store)
            os.sync()
            time.sleep(0.2)
            start_rss = monitor.reset()
            elapsed, answer = run()
            samples = results.setdefault(which, Samples())
            samples.rss_growth_kib.append(monitor.peak() - start_rss)
            samples.seconds.append(elapsed)
            if which == "raw":
                if answer["size"] != size:
                    raise SystemExit(f"raw upload stored {answer['size']} bytes, not {size}")
            elif answer["sha256"] != expected or answer["size"] != size:
                raise SystemExit(f"{which} receipt does not match the payload: {answer}")
            if which == "tus":
                if answer["header_sha256"] != expected:
                    raise SystemExit("the final PATCH's receipt header is wrong")
                final_patch.append(answer["last_patch_seconds"])
            if verbose:
                print(f"  round {round_} {which:<4} {size / MIB / elapsed:7.0f} MiB/s",
                      file=sys.stderr)
    return results, final_patch


def report(results: dict[str, Samples], final_patch: list[float], size: int, piece: int,
           rounds: int, hwm: tuple[int, int]) -> None:
    print(f"resumable upload: {label(size)} in PATCHes of {piece // MIB} MiB; 1 gunicorn worker "
          f"(gthread, 4 threads) on 127.0.0.1, client on the same host ({os.cpu_count()} CPUs); "
          f"median of {rounds} interleaved round(s), [best]")
    print(f"  {'upload':<34} {'MiB/s':>16} {'vs ordinary':>12} {'peak RSS growth MiB':>20}")
    put = results["put"].median_mibs(size)
    names = {"raw": "raw PUT, unencrypted (baseline)", "put": "vault PUT (ordinary upload)",
             "tus": "vault tus (resumable)"}
    for which in ("raw", "put", "tus"):
        samples = results[which]
        print(f"  {names[which]:<34} {samples.median_mibs(size):7.0f} "
              f"[{samples.best_mibs(size):6.0f}] {samples.median_mibs(size) / put:12.2f} "
              f"{max(samples.rss_growth_kib) / 1024:20.1f}")
    print(f"  the completing PATCH (its {piece // MIB} MiB plus the verify-decrypt-store pass "
          f"over the whole file): {statistics.median(final_patch):.1f} s median")
    print(f"  server worker VmHWM (peak RSS): {hwm[0] / 1024:.1f} MiB after warm-up, "
          f"{hwm[1] / 1024:.1f} MiB at the end (+{(hwm[1] - hwm[0]) / 1024:.1f} MiB)")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB instead of 2 GiB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--patch", type=int, default=64, help="MiB per PATCH (default 64)")
    parser.add_argument("-v", "--verbose", action="store_true", help="every upload on stderr")
    parser.add_argument("--dir", type=Path, default=None,
                        help="parent of the temporary directory (default: the system temp dir)")
    args = parser.parse_args()
    if args.rounds < 1 or args.patch < 1:
        parser.error("--rounds and --patch must be at least 1")
    size = 256 * MIB if args.quick else 2048 * MIB
    piece = args.patch * MIB

    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="vault-tus-bench-", dir=args.dir))
    needed = 3 * size + 256 * MIB
    if shutil.disk_usage(workdir).free < needed:
        shutil.rmtree(workdir)
        raise SystemExit(f"need {needed / MIB / 1024:.1f} GiB free under {workdir.parent}")
    server: Server | None = None
    monitor: RssMonitor | None = None
    try:
        env = prepare(workdir)  # the proposal's limit raised to 2 GiB
        token = create_token(env)
        server = Server.start(env, workdir)
        auth = {"Authorization": f"Bearer {token}"}
        status, body = request(server.port, "GET", "/api/v1/submissions", auth)
        if status != 200 or not json.loads(body)["submissions"]:
            raise SystemExit(f"GET /api/v1/submissions answered {status}: {body[:300]!r}")
        submission_id = json.loads(body)["submissions"][0]["id"]
        monitor = RssMonitor(server.worker_pid)
        monitor.start()
        measure(server, token, submission_id, 8 * MIB, 4 * MIB, 1, monitor, workdir)  # warm-up
        start_hwm = monitor.hwm()
        results, final_patch = measure(server, token, submission_id, size, piece, args.rounds,
                                       monitor, workdir, verbose=args.verbose)
        report(results, final_patch, size, piece, args.rounds, (start_hwm, monitor.hwm()))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if monitor is not None:
            monitor.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
