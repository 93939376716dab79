"""``python -m storage.files.bucket``: create the configured bucket if it does not exist
(the compose file's ``s3-init`` service, for a fresh S3-compatible store). The bucket is
created private: no ACL or policy grants anyone else anything."""

from __future__ import annotations

import asyncio
import sys

from botocore.exceptions import ClientError

from core.settings import load_settings
from storage.files.s3 import S3FileStore


async def ensure_bucket() -> int:
    """Create IMAGEBOT_S3_BUCKET unless it exists; 0 on success."""
    settings = load_settings()
    if not settings.s3_bucket:
        print("IMAGEBOT_S3_BUCKET is not set", file=sys.stderr)
        return 2
    store = S3FileStore(
        settings.s3_bucket, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region
    )
    try:
        if await store.check() is None:
            print(f"bucket {settings.s3_bucket} is ready")
            return 0
        client = await store.client()
        options = {}
        if settings.s3_region and settings.s3_region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": settings.s3_region}
        try:
            await client.create_bucket(Bucket=settings.s3_bucket, **options)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                print(f"cannot create the bucket ({code})", file=sys.stderr)
                return 1
        print(f"bucket {settings.s3_bucket} created")
        return 0
    finally:
        await store.aclose()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(ensure_bucket()))
