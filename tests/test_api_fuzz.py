"""Property-based tests: generated payloads and a schemathesis run over the OpenAPI schema
find no 500s."""
import json
import os
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import sessionmaker

from service.api import create_app
from service.auth import create_key
from service.config import Settings
from service.db import make_engine, upgrade
from tests.conftest import database_urls


@pytest.fixture(scope="module", params=database_urls())
def served(request, tmp_path_factory, demo_bundle):
    """The app on a fresh SQLite database, and on PostgreSQL when CI provides one."""
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'suqiu.db'}", None
    else:
        from service.db import create_scratch_database, drop_database

        url = create_scratch_database(os.environ["SUQIU_TEST_POSTGRES_URL"], "fuzz")
        drop = drop_database
    upgrade(url)
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        key = create_key(s, role="admin", name="fuzz")
    app = create_app(Settings(database_url=url, model_dir=demo_bundle.path, max_text_chars=3000,
                              registry_dir=tmp_path_factory.mktemp("fuzz-registry")))  # it promotes and rolls back
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client, key
    engine.dispose()
    if drop:
        drop(url)


def test_schema_no_server_errors(served):
    """Every operation in the OpenAPI schema, driven by schemathesis-generated cases.

    (schemathesis's own pytest plugin does not run under pytest 9, so the operations are
    driven through hypothesis directly.)
    """
    app, _, key = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers={"X-API-Key": key}, checks=[not_a_server_error])

        check()


texts = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=400)
# what a hostile client can put in a JSON string: any code point, lone surrogates and NUL included
anything = st.text(alphabet=st.characters(exclude_categories=()), max_size=200)
times = st.datetimes().map(lambda d: d.isoformat()) | st.datetimes(
    timezones=st.timezones()).map(lambda d: d.isoformat()) | anything
numbers = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 2 ** 70])


@given(appeals=st.lists(st.fixed_dictionaries(
    {"id": st.text(min_size=0, max_size=140) | anything, "text": texts | anything | numbers},
    optional={"title": st.none() | texts | anything, "time": st.none() | times | numbers,
              "district": st.none() | st.text(max_size=200) | anything, "user": st.none() | anything,
              "channel": st.none() | anything}), min_size=1, max_size=5),
       single=st.booleans())
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_payload_gets_a_clear_answer(served, appeals, single):
    """Out-of-range times, NUL, lone surrogates, non-finite numbers: never a 500, on either
    database; the answer is JSON and quotes nothing it cannot carry."""
    _, client, key = served
    body = appeals[0] if single else {"appeals": appeals}
    raw = json.dumps(body, ensure_ascii=True, allow_nan=True)  # NaN, Infinity, \ud800 as a client sends them
    r = client.post("/v1/appeals", content=raw, headers={"X-API-Key": key, "Content-Type": "application/json"})
    assert r.status_code in {200, 409, 413, 422}, r.text
    if r.status_code == 200:
        assert [t["id"] for t in r.json()["data"]] == [a["id"] for a in (appeals[:1] if single else appeals)]
    else:
        assert r.json()["detail"]


@given(params=st.fixed_dictionaries({}, optional={
    "since": times, "until": times, "cursor": anything | st.text(alphabet="s0123456789=", max_size=40),
    "category": anything, "urgency": anything, "district": anything, "needs_review": anything,
    "limit": anything | st.integers().map(str)}), appeal_id=anything)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_query_gets_a_clear_answer(served, params, appeal_id):
    _, client, key = served
    params = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()}
    r = client.get("/v1/appeals", params=params, headers={"X-API-Key": key})
    assert r.status_code in {200, 422}, r.text
    safe_id = appeal_id.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    r = client.get(f"/v1/appeals/{quote(safe_id, safe='')}", headers={"X-API-Key": key})
    assert r.status_code in {200, 404, 422}, r.text
