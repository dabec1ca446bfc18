"""The soak reuses the fault fixtures (a fork server, sites, private services)."""

from tests.faults.conftest import forks, private_postgres, private_redis, site  # noqa: F401
