"""Property-based tests: generated payloads and a schemathesis run over the OpenAPI schema
find no 500s."""
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


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_bundle):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'suqiu.db'}"
    upgrade(url)
    with sessionmaker(make_engine(url))() as s:
        key = create_key(s, role="admin", name="fuzz")
    app = create_app(Settings(database_url=url, model_dir=demo_bundle.path, max_text_chars=3000))
    with TestClient(app) as client:
        yield app, client, key


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


@given(appeals=st.lists(st.fixed_dictionaries(
    {"id": st.text(min_size=0, max_size=140), "text": texts},
    optional={"title": st.none() | texts, "time": st.none() | st.datetimes().map(lambda d: d.isoformat()),
              "district": st.none() | st.text(max_size=200)}), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_payload_gets_a_clear_answer(served, appeals):
    _, client, key = served
    r = client.post("/v1/appeals", json={"appeals": appeals}, headers={"X-API-Key": key})
    assert r.status_code in {200, 409, 413, 422}, r.text
    if r.status_code == 200:
        assert [t["id"] for t in r.json()["data"]] == [a["id"] for a in appeals]
    else:
        assert r.json()["detail"]
