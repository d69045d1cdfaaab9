"""Watch the drift gauges while white wines reach the red-wine model: a chart drawn from a real server's /metrics.

    python -m load_tests.drift_demo [--model torch] [--window 500] [--step 50] [--out docs/drift.png]

Serves the pinned models (`make models` first) on a free port with two entry workers and a drift window of
--window rows, in a private BENTOML_HOME over your model store (a server of yours on the same store keeps its
metrics). Then sends one model, --step rows at a time: a window of random red rows, a window of random white rows,
a window of red rows again; reads /metrics after each step and draws every feature's PSI and the predicted grades'
PSI against the rows sent, with the 0.1 and 0.25 levels. Prints the figures as it goes.

The default model is the network: four in five red rows are its training rows, which the extra-trees model
(sklearn) has nearly memorized, so their grades look drifted against its out-of-fold grades (new wines do not).
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from harness.devserver import start_server
from harness.traffic import feature_psi, private_home, sample_rows, samples, scrape, send_rows
from train.data import RED, WHITE
from wine_quality.schema import FEATURE_NAMES
from wine_quality.settings import PROJECT_ROOT

PHASES = (("red", RED, 11), ("white", WHITE, 12), ("red", RED, 13))  # name, file, seed of the sample
# every wine is sent without its type, so as red: the white phase is white wines mislabelled, the drift it shows
HIGHLIGHT = ("total sulfur dioxide", "chlorides", "residual sugar", "volatile acidity", "alcohol")
Series = dict[str, list[float | None]]


def run(kind: str, window: int, step: int) -> tuple[list[int], Series, list[tuple[str, int, int]]]:
    """Send the three phases and read the gauges after each step: rows sent, PSI per series, phase spans."""
    work = Path(tempfile.mkdtemp(prefix="wine-drift-demo-"))
    env = {"BENTOML_HOME": private_home(work), "WINE_ENTRY_WORKERS": "2", "WINE_DRIFT_WINDOW": str(window)}
    env |= {"WINE_DRIFT_MIN_ROWS": str(min(step, window)), "WINE_ACCESS_LOG": "false"}
    server = start_server(env=env, log_dir=work)
    sent, series, spans = [0], {name: [None] for name in (*FEATURE_NAMES, "predicted grade")}, []
    try:
        for name, path, seed in PHASES:
            rows = sample_rows(path, window, seed)
            start = sent[-1]
            for first in range(0, window, step):
                send_rows(server.url, kind, rows[first : first + step], batch=step)
                text = scrape(server.url)
                psi = feature_psi(text, kind)
                for feature in FEATURE_NAMES:
                    series[feature].append(psi.get(feature))
                series["predicted grade"].append(samples(text, "wine_prediction_drift_psi").get((kind, "red")))
                sent.append(sent[-1] + len(rows[first : first + step]))
                top = max(psi, key=lambda f: psi[f], default=None)
                print(f"{sent[-1]:5d} rows ({name}): highest PSI {top} {psi.get(top or '', 0):.2f}", flush=True)
            spans.append((name, start, sent[-1]))
    finally:
        server.stop()
    return sent, series, spans


def draw(kind: str, sent: list[int], series: Series, spans: list[tuple[str, int, int]], window: int, out: Path) -> None:
    """The chart: PSI per feature (the five that move most named), the grades' PSI dashed, the alert levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    for name, start, end in spans:
        if name == "white":
            ax.axvspan(start, end, color="gold", alpha=0.15, lw=0)
        ax.text((start + end) / 2, 1.02, f"{name} wines", transform=ax.get_xaxis_transform(), ha="center", fontsize=9)
    for feature in FEATURE_NAMES:
        named = feature in HIGHLIGHT
        ax.plot(
            sent,
            series[feature],
            lw=1.6 if named else 0.8,
            color=None if named else "0.75",
            label=feature if named else None,
        )
    ax.plot(sent, series["predicted grade"], "k--", lw=1.4, label="predicted grade")
    for level, text in ((0.1, "0.1 moderate"), (0.25, "0.25 alert")):
        ax.axhline(level, color="tab:red", lw=0.8, ls=":")
        ax.text(sent[-1], level, f" {text}", va="center", fontsize=8, color="tab:red")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(0, None)
    ax.set_xlabel(f"rows sent to the {kind} model (trained on red wines); window {window} rows, 2 entry workers")
    ax.set_ylabel("PSI on /metrics (symlog)")
    ax.legend(fontsize=8, loc="upper left", ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    # a palette of 64 colours: a third of the bytes, for a chart in a README
    Image.open(buffer).convert("RGB").quantize(colors=64).save(out, optimize=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m load_tests.drift_demo", description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("torch", "sklearn"), default="torch", help="the model sent the rows")
    p.add_argument("--window", type=int, default=500, help="WINE_DRIFT_WINDOW of the server, and rows per phase")
    p.add_argument("--step", type=int, default=50, help="rows sent between two reads of /metrics (default 50)")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "drift.png", help="the chart (PNG)")
    args = p.parse_args()
    sent, series, spans = run(args.model, args.window, args.step)
    draw(args.model, sent, series, spans, args.window, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
