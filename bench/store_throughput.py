"""Document store throughput: vault upload/download vs plain unencrypted transfers, in one run.

The vault streams every upload through the encryptor into the blob store and every download
back through the decryptor, in bounded memory. This measures what that costs against a plain
endpoint on the same HTTP stack: one gunicorn server, configured as in production
(``--workers 1 --worker-class gthread --threads 4``), serves both the vault and the baseline
routes of ``bench/_plain_app.py`` (a raw-body PUT streamed unencrypted to disk with fsync, and
a ``send_file`` of the same bytes). For each size it prints client-side MiB/s (median of the
rounds, best in brackets; vault and plain runs interleaved), the vault/plain ratios against
the targets, the server worker's CPU time per MiB (user+system, median), and its peak RSS
growth during each transfer (VmRSS sampled every 50 ms; the worst round).

Targets (the document store's requirements): upload >= 0.9 of plain, download >= 0.8 of
plain, peak RSS growth <= 64 MiB for a 1 GiB transfer.

    .venv/bin/python bench/store_throughput.py [--quick] [--rounds N] [-v] [--dir PARENT]

``--quick`` uses 64 MiB and 256 MiB instead of 256 MiB and 1 GiB. Needs about twice the
largest size of free disk under the temp directory (each round's files are removed once read
back); the directory and the server are removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMME = "sovereign-ai-2025"
KIND = "proposal"
APPLICANT = "applicant01@demo.example"
MIB = 1024 * 1024
BLOCK = MIB  # client send/receive block
SAMPLE_SECONDS = 0.05
TARGETS = {"upload": 0.9, "download": 0.8}
RSS_TARGET_MIB = 64
RSS_TARGET_SIZE = 1024 * MIB  # the RSS target is stated for 1 GiB


# -- payload -----------------------------------------------------------------------------

_BASE = os.urandom(BLOCK)
_FIRST = b"%PDF-1.7\n%bench\n" + _BASE[16:]  # PDF kinds check the magic bytes


def payload(size: int) -> Iterator[memoryview]:
    """``size`` bytes starting with ``%PDF-``, in 1 MiB blocks, without holding them all."""
    sent = 0
    block = memoryview(_FIRST)
    while sent < size:
        piece = block[: size - sent]
        yield piece
        sent += len(piece)
        block = memoryview(_BASE)


def payload_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for block in payload(size):
        digest.update(block)
    return digest.hexdigest()


# -- server worker memory ----------------------------------------------------------------

def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class RssMonitor:
    """Samples the worker's VmRSS every 50 ms; ``reset()`` starts a window, ``peak()`` ends it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._lock = threading.Lock()
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = _status_kib(self.pid, "VmRSS")
            with self._lock:
                self._peak = max(self._peak, rss)
            self._stop.wait(SAMPLE_SECONDS)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> int:
        """Start a window: returns the current VmRSS (KiB) and makes it the peak so far."""
        rss = _status_kib(self.pid, "VmRSS")
        with self._lock:
            self._peak = rss
        return rss

    def peak(self) -> int:
        rss = _status_kib(self.pid, "VmRSS")
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak

    def hwm(self) -> int:
        return _status_kib(self.pid, "VmHWM")


# -- the server --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found next to {sys.executable} or on PATH")
    return found


def prepare(workdir: Path) -> dict[str, str]:
    """A development vault with the demo data, and the proposal limit raised for big files."""
    programmes = workdir / "programmes"
    # The whole folder: a definition names files beside it (the NDA text).
    shutil.copytree(ROOT / "policies" / "programmes", programmes)
    definition = programmes / f"{PROGRAMME}.toml"
    source = definition.read_text(encoding="utf-8")
    raised, count = re.subn(
        r'(id = "proposal"\n(?:(?!\[\[).*\n)*?max_size_mb = )\d+', r"\g<1>2048", source)
    if count != 1:
        raise SystemExit("could not raise the proposal size limit in the programme definition")
    definition.write_text(raised, encoding="utf-8")
    (workdir / "plain").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BENCH_"))}
    env.update(
        VAULT_MODE="development",
        VAULT_DATA_DIR=str(workdir / "data"),
        VAULT_PROGRAMMES_DIR=str(programmes),
        BENCH_PLAIN_DIR=str(workdir / "plain"),
        PYTHONUNBUFFERED="1",
    )
    subprocess.run([_tool("vault"), "init", "--demo"], cwd=ROOT, env=env, check=True,  # noqa: S603
                   stdout=subprocess.DEVNULL)
    return env


def create_token(env: dict[str, str]) -> str:
    done = subprocess.run([_tool("vault"), "token", "create", "--email", APPLICANT,  # noqa: S603
                           "--name", "store-throughput-bench", "--days", "1"],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    worker_pid: int = 0

    @classmethod
    def start(cls, env: dict[str, str], workdir: Path) -> Server:
        port = _free_port()
        log = workdir / "gunicorn.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(  # noqa: S603
                [_tool("gunicorn"), "--workers", "1", "--worker-class", "gthread",
                 "--threads", "4", "--bind", f"127.0.0.1:{port}", "bench._plain_app:app"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the server
            )
        server = cls(process, port, log)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log.read_text(errors='replace')}")
            try:
                status, _ = request(self.port, "GET", "/api/v1/health")
                children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
                pids = children.read_text().split()
                if status == 200 and len(pids) == 1:
                    self.worker_pid = int(pids[0])
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the master stops its worker
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# -- the client --------------------------------------------------------------------------

def request(port: int, method: str, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def upload(port: int, path: str, headers: dict[str, str], size: int) -> tuple[float, dict]:
    """PUT ``size`` payload bytes with a Content-Length; returns seconds and the JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        start = time.perf_counter()
        conn.putrequest("PUT", path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        try:
            for block in payload(size):
                conn.send(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (an error); read what it said
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if response.status != 201:
        raise SystemExit(f"PUT {path} answered {response.status}: {body[:500]!r}")
    return elapsed, json.loads(body)


def download(port: int, path: str, headers: dict[str, str], size: int) -> tuple[float, None]:
    """GET ``path`` into a reused 1 MiB buffer; checks the length and the leading bytes."""
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {response.read()[:500]!r}")
        received = response.readinto(view)
        if bytes(view[:5]) != b"%PDF-":
            raise SystemExit(f"GET {path} did not return the uploaded bytes")
        while count := response.readinto(view):
            received += count
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if received != size:
        raise SystemExit(f"GET {path} returned {received} bytes, expected {size}")
    return elapsed, None


# -- the measurement ---------------------------------------------------------------------

@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    rss_growth_kib: list[int] = field(default_factory=list)
    server_user: list[float] = field(default_factory=list)
    server_sys: list[float] = field(default_factory=list)

    def best_mibs(self, size: int) -> float:
        return size / MIB / min(self.seconds)

    def median_mibs(self, size: int) -> float:
        return size / MIB / statistics.median(self.seconds)


def label(size: int) -> str:
    return f"{size // (1024 * MIB)} GiB" if size % (1024 * MIB) == 0 else f"{size // MIB} MiB"


def discard_stored(workdir: Path, which: str) -> None:
    """Remove what earlier rounds stored for ``which`` (the vault's blobs, or the plain files).

    Called just before each upload (untimed), so disk use and the page cache stay bounded and
    vault and plain uploads find the same conditions: the pages their predecessor just freed.
    (On VMs that hand free guest pages back to the host, writing into never-reused page cache
    costs extra system time per MiB, whichever endpoint pays it.) Only the benchmark's own
    throw-away vault is touched; the versions whose blobs go are never read again.
    """
    stored = (workdir / "data" / "blobs").glob("??/??/*") if which == "vault" else (
        workdir / "plain").iterdir()
    for path in list(stored):
        path.unlink()


def measure(server: Server, token: str, submission_id: str, sizes: list[int], rounds: int,
            monitor: RssMonitor, workdir: Path, *, verbose: bool = False
            ) -> dict[tuple[int, str, str], Samples]:
    """Interleaved vault/plain uploads then downloads of each size, ``rounds`` times."""
    port = server.port
    auth = {"Authorization": f"Bearer {token}"}
    results: dict[tuple[int, str, str], Samples] = {}

    def timed(key: tuple[int, str, str], run: Callable[[], tuple[float, object]]) -> object:
        if key[1] == "upload":
            discard_stored(workdir, key[2])
        os.sync()  # no earlier transfer's writeback lands in this one
        time.sleep(0.2)
        start_rss = monitor.reset()
        start_user, start_sys = cpu_seconds(monitor.pid)
        elapsed, answer = run()
        end_user, end_sys = cpu_seconds(monitor.pid)
        samples = results.setdefault(key, Samples())
        samples.server_user.append(end_user - start_user)
        samples.server_sys.append(end_sys - start_sys)
        samples.rss_growth_kib.append(monitor.peak() - start_rss)
        samples.seconds.append(elapsed)
        if verbose:
            size, transfer, which = key
            print(f"  {label(size):<8} {transfer:<9} {which:<6} {size / MIB / elapsed:7.0f} MiB/s  "
                  f"server CPU {(end_user - start_user) * 1000 / (size / MIB):.2f}+"
                  f"{(end_sys - start_sys) * 1000 / (size / MIB):.2f} ms/MiB", file=sys.stderr)
        return answer

    for size in sizes:
        name = label(size).replace(" ", "")
        expected = payload_sha256(size)
        vault_put_headers = {
            **auth, "Content-Type": "application/pdf",
            "Content-Disposition": f"attachment; filename*=UTF-8''bench-{name}.pdf",
        }
        vault_put = f"/api/v1/submissions/{submission_id}/documents/{KIND}"
        for round_ in range(rounds):
            vault_first = round_ % 2 == 0
            # A new file each round, as the vault writes a new blob (no truncation).
            plain_name = f"plain-{name}-{round_}.pdf"
            uploads = [
                ("vault", partial(upload, port, vault_put, vault_put_headers, size)),
                ("plain", partial(upload, port, f"/bench/plain-upload/{plain_name}",
                                  {"Content-Type": "application/pdf"}, size)),
            ]
            receipt: dict = {}
            for which, run in uploads if vault_first else reversed(uploads):
                answer = timed((size, "upload", which), run)
                if which == "vault":
                    receipt = answer
                    if receipt["size"] != size or receipt["sha256"] != expected:
                        raise SystemExit(f"vault receipt does not match the payload: {receipt}")
                elif answer["size"] != size:
                    raise SystemExit(f"plain upload stored {answer['size']} bytes, not {size}")
            downloads = [
                ("vault", partial(download, port, receipt["content_url"], auth, size)),
                ("plain", partial(download, port, f"/bench/plain-download/{plain_name}", {},
                                  size)),
            ]
            for which, run in downloads if vault_first else reversed(downloads):
                timed((size, "download", which), run)
    return results


def _cpu_text(samples: Samples, mib: float) -> str:
    """Median server CPU per MiB, user+system, in milliseconds."""
    user = statistics.median(samples.server_user) * 1000 / mib
    system = statistics.median(samples.server_sys) * 1000 / mib
    return f"{user:.2f}+{system:.2f}"


def report(results: dict[tuple[int, str, str], Samples], sizes: list[int], rounds: int,
           start_hwm: int, end_hwm: int) -> None:
    print(f"store throughput: 1 gunicorn worker (gthread, 4 threads) on 127.0.0.1, client on "
          f"the same host ({os.cpu_count()} CPUs); median of {rounds} interleaved rounds, "
          f"[best]")
    print(f"  {'size':<8} {'transfer':<9} {'vault MiB/s':>16} {'plain MiB/s':>16} "
          f"{'ratio':>12} {'target':>6}  {'server CPU ms/MiB (usr+sys)':>25}  "
          f"{'peak RSS growth MiB':>19}")
    print(f"  {'':<8} {'':<9} {'':>16} {'':>16} {'':>12} {'':>6}  {'vault / plain':>25}  "
          f"{'vault / plain':>19}")
    verdicts = []
    for size in sizes:
        mib = size / MIB
        for transfer in ("upload", "download"):
            vault, plain = results[(size, transfer, "vault")], results[(size, transfer, "plain")]
            ratio = vault.median_mibs(size) / plain.median_mibs(size)
            best_ratio = vault.best_mibs(size) / plain.best_mibs(size)
            target = TARGETS[transfer]
            vault_cpu = _cpu_text(vault, mib)
            plain_cpu = _cpu_text(plain, mib)
            vault_rss = max(vault.rss_growth_kib) / 1024
            plain_rss = max(plain.rss_growth_kib) / 1024
            print(f"  {label(size):<8} {transfer:<9} "
                  f"{vault.median_mibs(size):7.0f} [{vault.best_mibs(size):6.0f}] "
                  f"{plain.median_mibs(size):7.0f} [{plain.best_mibs(size):6.0f}] "
                  f"{ratio:5.2f} [{best_ratio:4.2f}] {target:>6.2f}  "
                  f"{vault_cpu:>12} / {plain_cpu:<10}  {vault_rss:10.1f} / {plain_rss:<6.1f}")
            verdicts.append((f"{transfer} {label(size)}: vault/plain {ratio:.2f} "
                             f"(target >= {target})", ratio >= target))
            if size == RSS_TARGET_SIZE:
                verdicts.append((f"{transfer} {label(size)}: peak RSS growth {vault_rss:.1f} MiB "
                                 f"(target <= {RSS_TARGET_MIB} MiB)", vault_rss <= RSS_TARGET_MIB))
    print(f"  server worker VmHWM (peak RSS): {start_hwm / 1024:.1f} MiB after warm-up, "
          f"{end_hwm / 1024:.1f} MiB at the end (+{(end_hwm - start_hwm) / 1024:.1f} MiB)")
    if RSS_TARGET_SIZE not in sizes:
        print("  (quick run: the RSS target is stated for 1 GiB; run without --quick for it)")
    for text, ok in verdicts:
        print(f"  {'ok    ' if ok else 'MISSED'} {text}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB and 256 MiB only")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every transfer as it is measured (on stderr)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="parent of the temporary directory (default: the system temp dir)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = [64 * MIB, 256 * MIB] if args.quick else [256 * MIB, 1024 * MIB]

    # SIGTERM (e.g. from a CI timeout) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="vault-store-bench-", dir=args.dir))
    needed = 2 * max(sizes) + 256 * MIB  # one round's vault blob and plain file
    if shutil.disk_usage(workdir).free < needed:
        shutil.rmtree(workdir)
        raise SystemExit(f"need {needed / MIB / 1024:.1f} GiB free under {workdir.parent}")
    server: Server | None = None
    monitor: RssMonitor | None = None
    try:
        env = prepare(workdir)
        token = create_token(env)
        server = Server.start(env, workdir)
        auth = {"Authorization": f"Bearer {token}"}
        status, body = request(server.port, "GET", "/api/v1/submissions", auth)
        if status != 200 or not json.loads(body)["submissions"]:
            raise SystemExit(f"GET /api/v1/submissions answered {status}: {body[:300]!r}")
        submission_id = json.loads(body)["submissions"][0]["id"]
        monitor = RssMonitor(server.worker_pid)
        monitor.start()
        # Warm-up (not measured): every code path once, so imports and first-use costs are paid.
        measure(server, token, submission_id, [4 * MIB], 1, monitor, workdir)
        start_hwm = monitor.hwm()
        results = measure(server, token, submission_id, sizes, args.rounds, monitor, workdir,
                          verbose=args.verbose)
        end_hwm = monitor.hwm()
        report(results, sizes, args.rounds, start_hwm, end_hwm)
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
