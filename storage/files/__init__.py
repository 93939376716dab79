"""File stores behind core's ``FileStore`` port."""

from storage.files.local import LocalFileStore

__all__ = ["LocalFileStore"]
