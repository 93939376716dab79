"""The compose file's ``s3`` profile: an S3-compatible store on the compose network only,
a job that makes its private bucket, and workers that share no volume with anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings import load_settings
from tests.unit.test_docker_files import _REFERENCE, _VARIABLE, compose, environment_of


def test_s3_profile_has_a_private_store_and_workers_without_volumes() -> None:
    services = compose()["services"]
    store, init, worker = services["s3"], services["s3-init"], services["worker-s3"]
    for service in (store, init, worker):
        assert service["profiles"] == ["s3"]
    assert "ports" not in store  # reachable on the compose network only
    assert init["entrypoint"] == ["python", "-m", "storage.files.bucket"]
    assert init["depends_on"]["s3"]["condition"] == "service_healthy"
    assert worker["volumes"] == []  # no shared data directory
    assert worker["depends_on"]["s3-init"]["condition"] == "service_completed_successfully"
    assert worker["command"][:3] == ["run", "--role", "worker"]
    assert "ports" not in worker and "container_name" not in worker
    for name in ("bot", "worker", "db"):
        assert "profiles" not in services[name]  # the default installation is unchanged


def test_s3_worker_environment_builds_s3_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if _VARIABLE.fullmatch(name) or name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    for key, value in environment_of(compose()["services"]["worker-s3"]).items():
        monkeypatch.setenv(key, _REFERENCE.sub(lambda m: m.group(3) or "", value))
    settings = load_settings()
    assert settings.file_store == "s3"
    assert settings.s3_bucket == "imagebot"
    assert settings.s3_endpoint_url == "http://s3:9000"
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_SECRET_ACCESS_KEY"]


async def test_bucket_job_creates_the_bucket_once(
    moto_s3: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from storage.files.bucket import ensure_bucket
    from tests.fakes.s3_server import MotoS3

    assert isinstance(moto_s3, MotoS3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGEBOT_S3_BUCKET", "made-by-init")
    monkeypatch.setenv("IMAGEBOT_S3_ENDPOINT_URL", moto_s3.base_url)
    monkeypatch.setenv("IMAGEBOT_S3_REGION", "us-east-1")
    assert await ensure_bucket() == 0
    assert await ensure_bucket() == 0  # idempotent
    grants = moto_s3.client().get_bucket_acl(Bucket="made-by-init")["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee")) for g in grants)
