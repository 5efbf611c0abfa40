"""A real moto S3 server on loopback, for tests that talk S3 over HTTP (not a test module).

Tests reach it like any S3 endpoint, so the boto3 client, its HTTP layer and the server's
enforcement of S3 rules (such as the 5 MiB minimum part size) are all exercised.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Clearly fake credentials; moto accepts any, boto3 insists on some.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "insecure-test",
    "AWS_SECRET_ACCESS_KEY": "insecure-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1, yield its endpoint URL, stop it afterwards."""
    port = _free_port()
    env = {**os.environ, **CREDENTIALS}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        # Not PIPE: an unread pipe would fill up and stall the server.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited with status {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer within {START_TIMEOUT} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
