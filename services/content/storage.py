"""Where uploaded files live: a local folder served by this server (the embedded default), or S3-compatible
object storage (Tencent COS, MinIO, AWS S3) when S3_BUCKET is set.

Keys are random and never reused, so a stored file never changes and may be cached for ever. boto3 is
synchronous: its calls run in worker threads of their own lane, with timeouts, never on the event loop.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import anyio

from infra.blocking_io import ThreadLane
from infra.settings import Settings
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.content")

# Seconds to wait for the object store (connect and each read).
S3_TIMEOUT_SECONDS = 10.0
S3_THREADS = 8
S3_LANE = ThreadLane(threads=S3_THREADS, timeout=S3_TIMEOUT_SECONDS)
CACHE_CONTROL = "public, max-age=31536000, immutable"
# Where the local storage is served by this server (see main.create_app).
LOCAL_ROUTE = "/media"


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key`; answers its public URL."""
        ...

    async def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files under `root`, served at `base_url` (this server's LOCAL_ROUTE)."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/") + "/"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("storage keys stay inside the upload folder")
        return path

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        await anyio.to_thread.run_sync(self._write, key, data)
        return self.base_url + key

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))


class S3Storage:
    """An S3-compatible bucket through boto3; public URLs under S3_PUBLIC_BASE_URL (a CDN or the bucket)."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            aws_access_key_id=settings.s3_access_key or None,
            aws_secret_access_key=settings.s3_secret_key or None,
            region_name=settings.s3_region,
            config=Config(
                connect_timeout=S3_TIMEOUT_SECONDS,
                read_timeout=S3_TIMEOUT_SECONDS,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )
        endpoint = (settings.s3_endpoint_url or f"https://s3.{settings.s3_region}.amazonaws.com").rstrip("/")
        base = settings.s3_public_base_url or f"{endpoint}/{self.bucket}"
        self.base_url = base.rstrip("/") + "/"

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await S3_LANE.run(
                lambda: self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    CacheControl=CACHE_CONTROL,
                )
            )
        except (BotoCoreError, ClientError) as exc:
            log.error("storing %s in bucket %s failed: %s", key, self.bucket, exc)
            raise DomainError(
                ErrorCode.STORAGE_UNAVAILABLE, "Storing the file failed; try again shortly"
            ) from None
        return self.base_url + key

    async def delete(self, key: str) -> None:
        await S3_LANE.run(lambda: self._client.delete_object(Bucket=self.bucket, Key=key))


_storages: dict[tuple[str, ...], Storage] = {}


def get_storage(settings: Settings) -> Storage:
    """The storage the settings configure (one client per process and configuration)."""
    if settings.s3_bucket:
        key = (
            "s3",
            settings.s3_endpoint_url,
            settings.s3_bucket,
            settings.s3_access_key,
            settings.s3_region,
            settings.s3_public_base_url,
        )
        if key not in _storages:
            _storages[key] = S3Storage(settings)
        return _storages[key]
    return LocalStorage(settings.resolved_upload_dir, settings.public_base_url.rstrip("/") + LOCAL_ROUTE)
