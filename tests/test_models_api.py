"""The model registry over HTTP (service/routes/models.py, ADR 0007): who may list, promote
and roll back, the answers, the audit log, and the service switching models in place."""
import time

import pytest
from sqlalchemy import select

from models.registry import promote
from service.db import AuditLog
from tests.conftest import api_env

PROBE = {"text": "北山区梧桐郡5栋暖气从前天开始就不热了，屋里只有十二度"}


def h(keys, role="admin"):
    return {"X-API-Key": keys[role]}


@pytest.fixture
def env(database_url, registry):
    """The service following a registry whose champion is v1 (not pinned), polling fast."""
    promote("v1", by="setup", registry=registry)
    with api_env(database_url, None, registry_dir=registry, model_poll_s=0.1, hotspots=False) as (client, keys, S):
        yield client, keys, S, registry


def served(client, version, timeout=10.0):
    """Wait until /readyz names ``version``; True when it does within ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if client.get("/readyz").json()["model_version"] == version:
            return True
        time.sleep(0.05)
    return False


def test_who_may_list_and_change_the_registry(env):
    client, keys, _, _ = env
    for role, status in (("analyst", 200), ("admin", 200), ("ingest", 403)):
        assert client.get("/v1/models", headers=h(keys, role)).status_code == status
    assert client.get("/v1/models").status_code == 401
    for path in ("/v1/models/v2/promote", "/v1/models/rollback"):
        for role in ("analyst", "ingest"):
            r = client.post(path, headers=h(keys, role))
            assert r.status_code == 403 and r.json() == {"detail": f"role '{role}' may not models:write"}
    assert client.get("/readyz").json()["model_version"] == "v1"


def test_list_promote_and_rollback(env):
    client, keys, S, registry = env
    r = client.get("/v1/models", headers=h(keys, "analyst"))
    body = r.json()
    assert body["count"] == 2 and {(v["version"], v["status"]) for v in body["data"]} == {("v1", "champion"),
                                                                                        ("v2", "candidate")}
    v1 = next(v for v in body["data"] if v["version"] == "v1")
    assert v1["promoted_by"] == "setup" and v1["model_version"] == "v1" and v1["data"]["category"]["sha256"]
    assert client.get("/readyz").json() == {"model_loaded": True, "model_version": "v1", "model_pinned": False,
                                            "database": True}

    r = client.post("/v1/models/v2/promote", json={"reason": "better on 城乡建设"}, headers=h(keys))
    assert r.status_code == 200, r.text
    event = r.json()
    assert (event["version"], event["status"], event["by"], event["previous"], event["pinned"]) == \
        ("v2", "champion", "test-admin", "v1", False)
    assert event["reason"] == "better on 城乡建设"
    assert served(client, "v2")
    tags = client.post("/v1/classify", json=PROBE, headers=h(keys, "ingest")).json()["data"]
    assert tags[0]["model_version"] == "v2"
    got = {v["version"]: v for v in client.get("/v1/models", headers=h(keys)).json()["data"]}
    assert got["v1"]["status"] == "retired" and got["v1"]["reason"] == "replaced by v2"
    assert got["v2"]["status"] == "champion" and got["v2"]["by"] == "test-admin"

    r = client.post("/v1/models/rollback", headers=h(keys))
    assert r.status_code == 200 and r.json()["version"] == "v1" and r.json()["previous"] == "v2"
    assert served(client, "v1")
    r = client.post("/v1/models/rollback", headers=h(keys))
    assert r.status_code == 409
    assert r.json() == {"detail": "nothing to roll back to: the history records no champion before v1"}
    with S() as s:
        audit = s.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target, AuditLog.detail)
                          .where(AuditLog.action.like("model.%")).order_by(AuditLog.id)).all()
    assert [tuple(a) for a in audit] == [
        ("test-admin", "model.promote", "v2", {"previous": "v1", "reason": "better on 城乡建设"}),
        ("test-admin", "model.rollback", "v1", {"from": "v2"})]


@pytest.mark.parametrize("version", ["v9", "v1.bak", "%2e%2e"])
def test_an_unknown_version_is_404(env, version):
    client, keys, _, _ = env
    r = client.post(f"/v1/models/{version}/promote", headers=h(keys))
    assert r.status_code == 404 and r.json() == {"detail": "Model version not found"}


def test_a_bundle_failing_verification_is_refused_and_nothing_changes(env):
    client, keys, _, registry = env
    with open(registry / "v2" / "urgency.joblib", "ab") as fh:
        fh.write(b"\0")
    r = client.post("/v1/models/v2/promote", headers=h(keys))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("model version v2 fails verification: urgency.joblib has SHA-256 ")
    assert detail.endswith("refusing to load a modified artifact.") and str(registry) not in detail
    assert (registry / "CURRENT").read_text(encoding="utf-8").strip() == "v1"
    r = client.post("/v1/models/v2/promote", json={"reason": "x", "force": True}, headers=h(keys))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]  # unknown fields are refused


def test_a_pinned_service_keeps_its_model(database_url, registry):
    """SUQIU_MODEL_DIR pins the model: a promotion changes the registry, not what this serves."""
    promote("v1", by="setup", registry=registry)
    with api_env(database_url, registry / "v1", registry_dir=registry, model_poll_s=0.1, hotspots=False) as env:
        client, keys, _ = env
        assert client.get("/readyz").json()["model_pinned"] is True
        r = client.post("/v1/models/v2/promote", headers=h(keys))
        assert r.status_code == 200 and r.json()["pinned"] is True
        time.sleep(0.5)
        assert client.get("/readyz").json()["model_version"] == "v1"
        assert client.app.state.model_watcher is None
