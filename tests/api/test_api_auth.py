"""Security of the API (interfaces.md §7.3): bearer token on every /api path but /api/health, constant-time
comparison, no CORS headers, auth off without a token."""

from __future__ import annotations

import hmac

import pytest

from heron_tui.api.app import BearerAuth
from tests.api.conftest import TOKEN

PROTECTED = ["/api/pipeline", "/api/filters", "/api/calls", "/api/turns", "/api/sessions", "/api/exchanges",
             "/api/metrics/summary", "/api/metrics/timeseries", "/api/metrics/breakdown", "/api/metrics/by-model",
             "/api/metrics/agents", "/api/metrics/tools", "/api/services", "/api/services/topology",
             "/api/insights", "/api/export/calls", "/api/openapi.json", "/api/no-such-path", "/api"]


@pytest.mark.parametrize("path", PROTECTED)
def test_401_without_or_with_a_wrong_token(auth_client, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}):
        r = auth_client.get(path, headers=headers)
        assert r.status_code == 401, (path, headers)
        assert r.json() == {"error": {"code": "unauthorized", "message": "missing or wrong bearer token"}}
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", [p for p in PROTECTED if p not in ("/api/no-such-path", "/api")])
def test_200_with_the_token(auth_client, path):
    r = auth_client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    r = auth_client.get(path, headers={"authorization": f"bearer {TOKEN}"})  # scheme is case-insensitive
    assert r.status_code == 200


def test_health_and_console_are_open(auth_client):
    assert auth_client.get("/api/health").status_code == 200
    assert auth_client.get("/").status_code == 200


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("heron_tui.api.app.hmac.compare_digest", spy)
    mw = BearerAuth(app=None, token="tok")  # type: ignore[arg-type]
    assert mw._authorized({"headers": [(b"authorization", b"Bearer tok")]})
    assert not mw._authorized({"headers": [(b"authorization", b"Bearer nope")]})
    assert calls == [(b"tok", b"tok"), (b"nope", b"tok")]


def test_no_cors_headers(auth_client, client):
    for c, headers in ((client, {}), (auth_client, {"Authorization": f"Bearer {TOKEN}"})):
        r = c.get("/api/calls", headers={**headers, "Origin": "https://evil.example"})
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        pre = c.options("/api/calls", headers={"Origin": "https://evil.example",
                                                "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in pre.headers


def test_auth_off_without_a_token(client):
    assert client.get("/api/calls").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_openapi_declares_the_bearer_scheme(auth_client, client):
    doc = auth_client.get("/api/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearer": []}]
    assert "security" not in client.get("/api/openapi.json").json()
