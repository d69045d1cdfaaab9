"""Which BentoML service a serving process runs, read from its command line in one place."""

from __future__ import annotations

from wine_quality.drain import service_of

WORKER = ["python", "-m", "_bentoml_impl.worker.service", ".", "--service-name", "wine_quality_torch", "--fd", "7"]


def test_a_worker_names_its_service() -> None:
    """A BentoML worker's `--service-name` is its service."""
    assert service_of(WORKER) == "wine_quality_torch"


def test_a_process_without_a_service_name_has_none() -> None:
    """The supervisor, another program, or a command line cut short after the flag: no service."""
    assert service_of(["bentoml", "serve", "service:WineQuality"]) is None
    assert service_of(["python", "--service-name"]) is None
    assert service_of([]) is None
