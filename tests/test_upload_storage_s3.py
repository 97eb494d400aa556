"""S3 mode against a real S3-compatible server (moto's server mode, started here on a free port): uploads land
in the bucket with their content type and are fetched back over HTTP from the public URL."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from models import Upload
from schema.node import decode_id
from tests.content_support import errors_of, new_member, photo_jpeg, upload
from tests.wechat_standin import WeChatStandIn

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    bucket = "lianmall-test"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    # Public images: the operator gives the bucket (or the CDN in front of it) a public-read policy.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    for name, value in {
        "s3_endpoint_url": s3_server,
        "s3_bucket": bucket,
        "s3_access_key": "test",
        "s3_secret_key": "test",
        "s3_public_base_url": f"{s3_server}/{bucket}",
    }.items():
        monkeypatch.setattr(settings, name, value)
    return client


async def test_uploads_go_to_the_bucket_and_are_served_from_its_public_url(
    client: httpx.AsyncClient, wechat: WeChatStandIn, s3: Any, s3_server: str
) -> None:
    _, token = await new_member()
    response = await upload(client, token, photo_jpeg(size=(800, 600)))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"].startswith(f"{s3_server}/lianmall-test/u/") and body["url"].endswith(".jpg")

    row = await Upload.get(id=decode_id(body["id"], "Upload"))
    stored = s3.head_object(Bucket="lianmall-test", Key=row.storage_key)
    assert stored["ContentType"] == "image/jpeg" and "immutable" in stored["CacheControl"]
    async with httpx.AsyncClient() as http:
        image = await http.get(body["url"])
        thumb = await http.get(body["thumbnailUrl"])
    assert image.status_code == 200 and thumb.status_code == 200
    served = Image.open(io.BytesIO(image.content))
    assert served.size == (600, 800) and dict(served.getexif()) == {}
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 360
    # WeChat is asked to check the public URL in the bucket.
    assert [j.media_url for j in wechat.media_jobs()] == [body["url"]]


async def test_storage_down_fails_the_upload_cleanly(
    client: httpx.AsyncClient, wechat: WeChatStandIn, s3: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "s3_bucket", "no-such-bucket")
    _, token = await new_member()
    before = await Upload.all().count()
    response = await upload(client, token, photo_jpeg())
    assert (response.status_code, errors_of(response)) == (503, ["STORAGE_UNAVAILABLE"])
    assert await Upload.all().count() == before and wechat.media_jobs() == []
