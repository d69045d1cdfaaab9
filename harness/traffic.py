"""Real wine rows sent to a running server over many connections, and the drift figures read back from /metrics."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from train.data import load_wines
from wine_quality.schema import FEATURE_NAMES

ROUTES = {"sklearn": "/predict", "torch": "/predict_net"}


def sample_rows(path: Path, n: int, seed: int) -> np.ndarray:
    """n rows of a data file (N x 11, schema order), drawn at random: the files are not in random order."""
    frame = load_wines(path)[list(FEATURE_NAMES)]
    return frame.sample(n, random_state=seed).to_numpy(dtype=np.float64)


def _post(url: str, body: dict[str, object]) -> None:
    # a new connection per request: the kernel hands connections to every entry worker, not one
    answer = httpx.post(url, json=body, timeout=60)
    answer.raise_for_status()


def send_rows(
    base_url: str, kind: str, rows: np.ndarray, batch: int = 1, clients: int = 8, wine_type: str | None = None
) -> None:
    """Grade rows with a model: one wine per request on /predict or /predict_net (batch=1), else /predict_batch;
    `wine_type` is sent with every wine (a `type` field, a `type` column), else left out (red)."""
    typed = {} if wine_type is None else {"type": wine_type}
    if batch == 1:
        jobs = [
            (base_url + ROUTES[kind], {**dict(zip(FEATURE_NAMES, row.tolist(), strict=True)), **typed}) for row in rows
        ]
    else:
        columns = list(FEATURE_NAMES) + list(typed)
        jobs = [
            (
                base_url + "/predict_batch",
                {"model": kind, "columns": columns, "data": [r + list(typed.values()) for r in chunk.tolist()]},
            )
            for chunk in np.array_split(rows, max(1, len(rows) // batch))
        ]
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda job: _post(*job), jobs))


def samples(metrics_text: str, name: str) -> dict[tuple[str, ...], float]:
    """The samples of one metric in a /metrics text: label values (sorted by label name) -> value."""
    found = {}
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name:
                found[tuple(v for _, v in sorted(s.labels.items()))] = s.value
    return found


def scrape(base_url: str) -> str:
    """One read of /metrics, on a new connection (any entry worker may answer)."""
    answer = httpx.get(base_url + "/metrics", timeout=30)
    answer.raise_for_status()
    return answer.text


def feature_psi(metrics_text: str, kind: str, wine_type: str = "red") -> dict[str, float]:
    """Feature -> PSI of one model's window of one wine type, as /metrics says."""
    psi = samples(metrics_text, "wine_feature_drift_psi")
    return {f: v for (f, m, t), v in psi.items() if (m, t) == (kind, wine_type)}


def private_home(folder: Path) -> str:
    """A BENTOML_HOME of its own over the current model store: a server started there has its own metrics files
    (BentoML empties PROMETHEUS_MULTIPROC_DIR, under BENTOML_HOME, whenever a server starts) but the same models."""
    store = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")) / "models"
    home = folder / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(store)
    return str(home)
