"""A real S3 wire server on loopback: moto's server mode (``ThreadedMotoServer``).

moto implements S3's REST protocol (SigV4 auth, ListObjectsV2 pagination, DeleteObjects,
Content-MD5 checks, presigned URLs), so the production client (aiobotocore) talks to it
exactly as to AWS S3 or MinIO. Each test takes a fresh bucket.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoS3:
    """moto's S3 on 127.0.0.1, port chosen by the system."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.base_url = ""

    def start(self) -> MotoS3:
        """Start the server thread and point the standard AWS variables at test keys."""
        for name, value in CREDENTIALS.items():
            os.environ.setdefault(name, value)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.base_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()

    def client(self) -> Any:
        """A plain boto3 client, for a test's own look at the bucket."""
        return boto3.client(
            "s3",
            endpoint_url=self.base_url,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name."""
        name = f"imagebot-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (all pages)."""
        out: list[str] = []
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        ):
            out.extend(o["Key"] for o in page.get("Contents", ()))
        return sorted(out)

    def raw(self, bucket: str, key: str) -> bytes:
        """The bytes of an object exactly as stored."""
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
