"""File stores behind core's ``FileStore`` port: the local folder, or an S3-compatible
bucket (IMAGEBOT_FILE_STORE)."""

from __future__ import annotations

from core.crypto import DataCipher
from core.errors import ConfigurationError
from core.settings import Settings
from storage.files.local import LocalFileStore
from storage.files.s3 import S3FileStore

__all__ = ["LocalFileStore", "S3FileStore", "build_file_store"]


def build_file_store(settings: Settings, cipher: DataCipher | None) -> LocalFileStore | S3FileStore:
    """The store IMAGEBOT_FILE_STORE names, with the operator's key."""
    if settings.file_store == "s3":
        if not settings.s3_bucket:
            raise ConfigurationError("IMAGEBOT_FILE_STORE=s3 needs IMAGEBOT_S3_BUCKET")
        return S3FileStore(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            cipher=cipher,
        )
    return LocalFileStore(settings.data_dir, cipher)
