"""Other users' latency while one applicant's worst-case PDF is viewed, against a baseline.

The demo vault (``vault init --demo``) is served as ``make run`` serves it (gunicorn, two
gthread workers of two threads, loopback). Eight other users (applicants 02-09, API tokens)
each loop over ``/api/v1/me``, ``/api/v1/submissions`` and ``/healthz``. Two phases of
``--seconds`` each, in the same run on the same server:

* baseline: only the eight work;
* worst case: applicant 01 has uploaded a PDF of ``--pages`` pages (80,000 by default: about
  12 MB, far below the 50 MiB limit, and an analysis that needs the whole limit) and views its
  pre-check again and again, while the officer reads the same document (a stamped copy), and
  the eight work as before.

Printed per phase: the other users' requests, failures (any status but 200, or no answer),
p50, p99 and the slowest request, and the applicant's and the officer's own figures.

    .venv/bin/python bench/precheck_contention.py [--pages N] [--seconds S] [--root DIR]
        [--database-url URL] [--analysis-seconds S]

``--root`` serves the vault from another checkout (to measure the code before a change: its
``vault`` package is put first on the path of the server and the command line).
``--analysis-seconds`` sets ``VAULT_ANALYSIS_SECONDS`` (default: the vault's own default).
Everything is created in a temporary directory and removed at the end.

Measured on a 2-CPU development VM shared with other work (80,000 pages, 40 s phases; other
users' p50 / p99 / slowest, in ms):

    code                             baseline          worst case viewed        failed
    before, SQLite                   28 / 232 / 679    26 / 37,993 / 37,993     2 of 78
    after,  SQLite                    8 /  99 / 286    27 /    267 /  2,173     0 of 3,084
    before, PostgreSQL                9 /  95 / 270    21 /    313 / 14,979     0 of 1,644
    after,  PostgreSQL                7 /  79 / 202    30 /    210 /  2,091     0 of 3,252

Before, each view of the pre-check analysed the file again inside a ``BEGIN IMMEDIATE``
transaction (SQLite: everyone else waited for it, up to the 30 s busy timeout and then 500)
and occupied a server thread for its length (both databases). After, the file is analysed
once in the background, the failure is kept, and the remaining slow requests are the ones
that queue behind the officer's stamped copy (about 20 s of sandboxed stamping for 80,000
pages, with no transaction open) in the same two-thread worker.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from tests.test_precheck_contention import call as one_call  # noqa: E402 - after the path
from tests.test_precheck_contention import many_pages  # noqa: E402

#: Run in the vault under test: print a one-day token of ``sys.argv[1]`` marked as created in
#: a session that passed a second factor.
VERIFIED_TOKEN = """
import sys
from vault.db import unit_of_work
from vault.runtime import Runtime
from vault.settings import Settings
runtime = Runtime.build(Settings.from_env())
with unit_of_work(runtime.sessions) as session:
    identity = runtime.identity(session)
    token, _ = identity.create_token(identity.find_by_email(sys.argv[1]), "bench", 1,
                                     mfa_verified=True)
print(token)
runtime.engine.dispose()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: One request on a fresh connection (the test's), with a longer patience for loaded runs.
call = functools.partial(one_call, timeout=120)


class Vault:
    """A demo vault served by gunicorn from ``root``, in ``directory``."""

    def __init__(self, root: Path, directory: Path, database_url: str | None,
                 analysis_seconds: int | None) -> None:
        self.root = root
        self.env = {"PATH": os.environ["PATH"], "VAULT_MODE": "development",
                    "VAULT_DATA_DIR": str(directory / "instance"), "PYTHONPATH": str(root)}
        if database_url:
            self.env["VAULT_DATABASE_URL"] = database_url
        if analysis_seconds:
            self.env["VAULT_ANALYSIS_SECONDS"] = str(analysis_seconds)
        self.vault("init", "--demo")
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.server = subprocess.Popen(  # noqa: S603 - this script, with arguments it built
            [str(BIN / "gunicorn"), "--workers", "2", "--worker-class", "gthread",
             "--threads", "2", "--timeout", "120", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            env=self.env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or self.server.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)

    def vault(self, *args: str) -> str:
        """The ``vault`` command of ``root`` against this vault; its standard output."""
        return subprocess.run(  # noqa: S603 - this script, with arguments it built itself
            [sys.executable, "-c", "from vault.cli import main; main()", *args], env=self.env,
            cwd=self.root, capture_output=True, text=True, timeout=300, check=True).stdout

    def token(self, email: str) -> str:
        """A fresh API token of the user."""
        return self.vault("token", "create", "--email", email, "--name", "bench").split()[0]

    def verified_token(self, email: str) -> str:
        """A token as the account page makes it after a sign-in with a second factor: an
        officer's token from ``vault token create`` has none, and cannot read documents."""
        return subprocess.run(  # noqa: S603 - this script, with arguments it built itself
            [sys.executable, "-c", VERIFIED_TOKEN, email], env=self.env, cwd=self.root,
            capture_output=True, text=True, timeout=300, check=True).stdout.strip()

    def stop(self) -> None:
        """Stop the server."""
        self.server.terminate()
        self.server.wait(timeout=60)


def work(base: str, token: str | None, paths: list[str], pause: float,
         stop: threading.Event, into: list[tuple[int, float]]) -> None:
    """Request ``paths`` in turn until ``stop``; (status, seconds) of each go ``into``."""
    while not stop.is_set():
        for path in paths:
            status, _, took = call(base, path, token)
            into.append((status, took))
            time.sleep(pause)


def phase(vault: Vault, others: list[str], seconds: float,
          extra: list[tuple[str, str, float, list[tuple[int, float]]]] = ()
          ) -> list[tuple[int, float]]:
    """Run the eight (and the ``extra`` loops: token, path, pause, results) for ``seconds``."""
    stop = threading.Event()
    seen: list[tuple[int, float]] = []
    threads = [threading.Thread(target=work, args=(
        vault.base, token, ["/api/v1/me", "/api/v1/submissions", "/healthz"], 0.05, stop, seen))
        for token in others]
    threads += [threading.Thread(target=work, args=(vault.base, token, [path], pause, stop, out))
                for token, path, pause, out in extra]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return seen


def figures(name: str, seen: list[tuple[int, float]]) -> str:
    """One printed line: count, failures, p50, p99 and the slowest, in milliseconds."""
    if not seen:
        return f"{name:<28} no requests"
    times = sorted(took * 1000 for _, took in seen)
    failed = sum(1 for status, _ in seen if status != 200)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (f"{name:<28} {len(seen):>6} requests {failed:>5} failed   p50 "
            f"{statistics.median(times):>8.0f} ms   p99 {p99:>8.0f} ms   max {times[-1]:>8.0f} ms")


def main() -> None:
    """Measure and print both phases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=80_000)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--database-url")
    parser.add_argument("--analysis-seconds", type=int)
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="vault-bench-"))
    vault = None
    try:
        vault = Vault(options.root.resolve(), directory, options.database_url,
                      options.analysis_seconds)
        applicant = vault.token("applicant01@demo.example")
        officer = vault.verified_token("officer@demo.example")
        others = [vault.token(f"applicant{n:02d}@demo.example") for n in range(2, 10)]
        _, data, _ = call(vault.base, "/api/v1/submissions", applicant)
        submission = json.loads(data)["submissions"][0]["id"]
        print(f"code: {options.root.resolve()}  database: "
              f"{'PostgreSQL' if options.database_url else 'SQLite'}  "
              f"phases of {options.seconds:g} s, eight other users")
        baseline = phase(vault, others, options.seconds)
        pdf = many_pages(options.pages)
        status, data, took = call(
            vault.base, f"/api/v1/submissions/{submission}/documents/proposal", applicant,
            method="PUT", body=pdf, headers={"Content-Type": "application/pdf",
                                             "Content-Disposition": "attachment; filename=a.pdf"})
        if status != 201:
            raise SystemExit(f"upload failed: {status} {data[:200]!r}")
        content_url = json.loads(data)["content_url"]
        print(f"worst case: {options.pages:,} pages, {len(pdf) / 1048576:.1f} MiB "
              f"(uploaded in {took:.1f} s)")
        viewing: list[tuple[int, float]] = []
        reading: list[tuple[int, float]] = []
        worst = phase(vault, others, options.seconds, [
            (applicant, f"/api/v1/submissions/{submission}/checklist", 0.5, viewing),
            (officer, content_url, 0.5, reading)])
        print(figures("others, baseline", baseline))
        print(figures("others, worst case viewed", worst))
        print(figures("applicant's pre-check", viewing))
        print(figures("officer's stamped read", reading))
        _, data, _ = call(vault.base, f"/api/v1/submissions/{submission}/checklist", applicant)
        readable = [f["evidence"] for f in json.loads(data).get("findings", [])
                    if f["check"] == "pdf.readable" and f["kind"] == "proposal"]
        print(f"pre-check of the worst case afterwards: {readable[0] if readable else '?'}")
    finally:
        if vault is not None:
            vault.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
