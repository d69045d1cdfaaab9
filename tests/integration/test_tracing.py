"""Request tracing is a setting: off by default (no exporter ships with the service), on with WINE_TRACING=true."""

from __future__ import annotations

import pytest

from harness.devserver import Server, start_server
from wine_quality.schema import EXAMPLE

pytestmark = pytest.mark.integration
SPAN_HEADER = "x-bentoml-request-id"  # BentoML names each answer's OpenTelemetry span here


def spans_named(server: Server) -> dict[str, bool]:
    """For each route, whether its answer names a span: made for it by BentoML's OpenTelemetry middleware."""
    found = {}
    with server.client() as client:
        for route in ("/predict", "/predict_net", "/classify"):
            answer = client.post(route, json=EXAMPLE)
            assert answer.status_code == 200, answer.text
            found[route] = SPAN_HEADER in answer.headers
    return found


def test_no_request_makes_a_span_by_default(server: Server) -> None:
    """The default server makes no span: spans cost the entry two fifths of its CPU, and nothing exports them."""
    assert spans_named(server) == {"/predict": False, "/predict_net": False, "/classify": False}


def test_tracing_on_makes_a_span_for_every_request(trained: object) -> None:
    """With WINE_TRACING=true every answer names its span, which BentoML's `tracing` configuration exports."""
    traced = start_server(env={"WINE_TRACING": "true"})
    try:
        assert spans_named(traced) == {"/predict": True, "/predict_net": True, "/classify": True}
    finally:
        traced.stop()
