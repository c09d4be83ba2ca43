"""The storage tests again, against a real PostgreSQL server (asyncpg), when BUTLER_TEST_POSTGRES_URL names one.

Without it they are skipped on a developer machine and fail in CI (CI=true), where .ci/run starts PostgreSQL.
"""

import os

import pytest

from tests.mcp_server.conftest import POSTGRES_MISSING, POSTGRES_URL_VARIABLE, RunningServer, in_ci
from tests.mcp_server.test_briefing import *  # noqa: F403
from tests.mcp_server.test_delivery import *  # noqa: F403
from tests.mcp_server.test_isolation import *  # noqa: F403
from tests.mcp_server.test_notes import *  # noqa: F403
from tests.mcp_server.test_reminders import *  # noqa: F403
from tests.mcp_server.test_series import *  # noqa: F403
from tests.mcp_server.test_tasks import *  # noqa: F403
from tests.mcp_server.test_time_and_agenda import *  # noqa: F403

# One skip line on a developer machine; in CI every test errors instead (see postgres_url in conftest).
if not os.environ.get(POSTGRES_URL_VARIABLE) and not in_ci():
    pytest.skip(POSTGRES_MISSING, allow_module_level=True)


@pytest.fixture(scope="session")
def server(postgres_server: RunningServer) -> RunningServer:
    return postgres_server
