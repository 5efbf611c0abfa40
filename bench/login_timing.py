"""Sign-in timing: unknown account vs wrong password vs right password, in one run.

The vault promises that an unknown e-mail address costs as much as a wrong password, so that
timing does not reveal which accounts exist. This prints the median time of each case and the
ratios to the wrong-password baseline (machines are noisy; ratios near 1.0 are what matters).

    .venv/bin/python bench/login_timing.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from vault import migrate
from vault.db import unit_of_work
from vault.identity.errors import IdentityError
from vault.identity.models import Role
from vault.runtime import Runtime
from vault.settings import Settings

PASSWORD = "insecure-benchmark-passphrase"


def main(rounds: int) -> None:
    """Measure and print."""
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings.from_env(
            {"VAULT_MODE": "development", "VAULT_DATA_DIR": directory,
             "VAULT_LOGIN_MAX_FAILURES": "100"},
            programmes_dir=Path(__file__).resolve().parent.parent / "policies" / "programmes",
        )
        runtime = Runtime.build(settings)
        migrate.upgrade(runtime.engine)
        with unit_of_work(runtime.sessions) as session:
            runtime.identity(session).create_user(
                email="bench@test.example", display_name="Bench", role=Role.APPLICANT,
                password=PASSWORD)

        def attempt(email: str, password: str) -> float:
            start = time.perf_counter()
            try:
                with unit_of_work(runtime.sessions) as session:
                    identity = runtime.identity(session)
                    identity.complete_sign_in(identity.authenticate(email, password))
            except IdentityError:
                pass
            return time.perf_counter() - start

        cases = {
            "wrong password (baseline)": ("bench@test.example", "insecure-wrong-password"),
            "unknown account": ("nobody@test.example", "insecure-wrong-password"),
            "right password": ("bench@test.example", PASSWORD),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):  # interleaved, so drift affects every case alike
            for name, (email, password) in cases.items():
                samples[name].append(attempt(email, password))
        baseline = statistics.median(samples["wrong password (baseline)"])
        print(f"sign-in timing, {rounds} rounds, median per attempt")
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"  {name:<28} {median * 1000:7.1f} ms   ratio {median / baseline:5.2f}")
        runtime.engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
