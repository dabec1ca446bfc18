"""Fixtures of the production-profile tests: empty PostgreSQL databases, fresh S3 buckets."""

from __future__ import annotations

import uuid

import pytest

from tests.support import services
from tests.support.databases import PostgresTemplates, _admin_conn, pg_url


@pytest.fixture
def empty_pg_url(postgres_templates: PostgresTemplates) -> str:
    """A new PostgreSQL database with no tables (dropped at the end of the session)."""
    if not postgres_templates.available():
        services.missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"custodia_e_{uuid.uuid4().hex[:12]}"
    with _admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    postgres_templates.created.append(name)
    return pg_url(name)


def new_bucket(endpoint: str, *, lock: bool = True) -> str:
    import boto3

    name = f"evidence-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name
