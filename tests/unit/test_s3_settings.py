"""Settings of the file store and of the limits for busy servers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.errors import ConfigurationError
from core.settings import Settings, describe
from storage.files import LocalFileStore, S3FileStore, build_file_store


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_local_store_is_the_default_and_s3_is_chosen_by_name(tmp_path: object) -> None:
    assert settings().file_store == "local"
    assert isinstance(build_file_store(settings(data_dir=tmp_path), None), LocalFileStore)
    s3 = settings(
        file_store="s3",
        s3_bucket="my-bucket",
        s3_endpoint_url="http://minio:9000",
        s3_prefix="site/",
    )
    store = build_file_store(s3, None)
    assert isinstance(store, S3FileStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        "my-bucket",
        "site/",
        "http://minio:9000",
    )
    assert store.key("users/1/jobs/a/out-0.png") == "site/users/1/jobs/a/out-0.png"


def test_s3_without_a_bucket_is_reported_and_refused() -> None:
    config = settings(file_store="s3")
    rows = {var: (status, words) for status, var, words in describe(config).lines}
    assert rows["IMAGEBOT_S3_BUCKET"][0] == "missing"
    with pytest.raises(ConfigurationError):
        build_file_store(config, None)
    ok = settings(file_store="s3", s3_bucket="b-1", s3_endpoint_url="http://u:p@minio:9000")
    words = {var: w for _, var, w in describe(ok).lines}["IMAGEBOT_FILE_STORE"]
    assert "b-1" in words and ":p@" not in words  # credentials in a URL are never printed


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("s3_bucket", "../etc"),
        ("s3_bucket", "UPPER"),
        ("s3_bucket", "a"),
        ("s3_prefix", "no-slash"),
        ("s3_prefix", "/abs/"),
        ("s3_prefix", "../up/"),
        ("file_store", "nfs"),
        ("download_link_seconds", 10),
        ("download_link_seconds", 10**9),
        ("rate_chat_platforms", "telegram;drop"),
        ("telegram_group_sends_per_minute", 0),
        ("telegram_group_sends_per_minute", 1000),
    ],
)
def test_bad_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        settings(**{name: value})


def test_chat_request_cap_platforms() -> None:
    assert settings().chat_rate_platforms == frozenset()
    assert settings(rate_chat_platforms="telegram, discord").chat_rate_platforms == {
        "telegram",
        "discord",
    }
