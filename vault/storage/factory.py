"""Choose a blob store from ``VAULT_BLOB_URL``.

Accepted forms:

- ``file:///absolute/path`` — a ``FileBlobStore`` rooted there;
- ``s3://bucket`` or ``s3://bucket/prefix/path`` — an ``S3BlobStore``; credentials come from
  the usual boto3 environment, never from the URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from vault.storage.file import FileBlobStore

if TYPE_CHECKING:
    from vault.storage import BlobStore

SETTING = "VAULT_BLOB_URL"
# S3 bucket naming rules (the DNS-compatible subset every region accepts).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def _invalid(reason: str) -> ValueError:
    # The URL itself is not echoed: a rejected one might carry credentials.
    return ValueError(
        f"{SETTING} is invalid: {reason}; expected file:///absolute/path or s3://bucket[/prefix]"
    )


def blob_store_from_url(url: str, *, s3_endpoint: str | None = None) -> BlobStore:
    """The blob store that ``url`` names; raises ``ValueError`` naming ``VAULT_BLOB_URL``."""
    parts = urlsplit(url.strip())
    if parts.query or parts.fragment:
        raise _invalid("query strings and fragments are not allowed")
    if parts.scheme == "file":
        return _file_store(parts.netloc, parts.path)
    if parts.scheme == "s3":
        return _s3_store(parts.netloc, parts.path, s3_endpoint)
    raise _invalid(f"unsupported scheme {parts.scheme!r}" if parts.scheme else "no scheme")


def _file_store(netloc: str, path: str) -> FileBlobStore:
    if netloc not in ("", "localhost"):
        raise _invalid("a file URL needs an absolute path (file:///path), not a host")
    root = Path(unquote(path))
    if not root.is_absolute():
        raise _invalid("the file path must be absolute")
    if ".." in root.parts:
        raise _invalid("the file path must not contain '..'")
    if root == Path(root.anchor):
        raise _invalid("the file path must not be the filesystem root")
    return FileBlobStore(root)


def _s3_store(netloc: str, path: str, endpoint: str | None) -> BlobStore:
    if "@" in netloc:
        raise _invalid("credentials belong in the AWS environment, not in the URL")
    if not netloc:
        raise _invalid("the bucket is missing")
    if _BUCKET.fullmatch(netloc) is None or ".." in netloc:
        raise _invalid(f"{netloc!r} is not a valid S3 bucket name")
    prefix = path.strip("/")
    if prefix and any(
        _PREFIX_SEGMENT.fullmatch(segment) is None or segment in (".", "..")
        for segment in prefix.split("/")
    ):
        raise _invalid("the prefix may only contain letters, digits, '.', '_', '-' and '/'")
    # Imported here so a deployment on the file backend does not load boto3.
    from vault.storage.s3 import S3BlobStore

    return S3BlobStore(netloc, prefix, endpoint_url=endpoint)
