"""`make loop`: the model's loop on this machine, from serving to a new model in service, with a summary table.

    .venv/bin/python deploy/loop.py [--held-back 600] [--replicas 2] [--clients 4] [--rate 50] [--force]

0. Set-up: hold back --held-back red wines that the data file has once each, train the scikit-learn model on the rest
   (both files less those wines), pin it, and build its image (`make bento`, `make image`). The pins live in
   build/loop/model-pins.json, which starts as a copy of yours: your own pins and wine-quality:latest are not touched.
1. Serve: the replicas of `make replicas` (PostgreSQL, HAProxy) on that image; the held-back wines are graded
   through HAProxy.
2. Feedback: their true grades go to POST /feedback, in lists.
3. Retrain with feedback (`python -m train.sklearn_model --with-feedback`, the capture database as WINE_CAPTURE_URL)
   and gate the new model against the served one (`python -m train.promote`): it is pinned only if it passes
   (--force pins it whatever the gate finds). A refusal ends the loop here (exit 1).
4. Build the image of the new pins and roll the replicas onto it under load (`make rollout`'s code).
5. Show the new tag answering, on each replica and through HAProxy. Everything started, and both images, are removed
   at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy import rollout  # noqa: E402
from deploy.image import backend  # noqa: E402
from deploy.pod import ROOT  # noqa: E402
from deploy.replicas import Replicas, up  # noqa: E402
from train.data import RED, WHITE, load_wines  # noqa: E402
from wine_quality.schema import FEATURE_NAMES, TARGET, TYPE_COLUMN  # noqa: E402
from wine_quality.settings import get_settings  # noqa: E402

WORK = ROOT / "build" / "loop"
IMAGE = "wine-quality-loop"
LIST = 200  # wines per /predict_batch and per /feedback list: well under the service's limit


def log(message: str) -> None:
    print(f"loop: {message}", file=sys.stderr, flush=True)


def command(
    *args: str, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,), show: bool = False
) -> tuple[int, str]:
    """Run a project command with this interpreter (its stderr shown as it goes, its stdout too with show); its exit
    status and stdout."""
    out = None if show else subprocess.PIPE
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, text=True)
    if done.returncode not in ok:
        sys.exit(f"loop: {' '.join(args)} failed ({done.returncode})")
    return done.returncode, done.stdout or ""


def hold_back(count: int, seed: int) -> tuple[list[Path], pd.DataFrame]:
    """The data files less count red wines that occur once (every copy of a wine would be seen otherwise), and those."""
    red = load_wines(RED)
    once = red.drop_duplicates(subset=list(FEATURE_NAMES), keep=False)
    chosen = once.sample(n=count, random_state=seed)
    WORK.mkdir(parents=True, exist_ok=True)
    base = WORK / "winequality-red-base.csv"  # its name says red, as the training scripts read it
    red.drop(index=chosen.index).to_csv(base, sep=";", index=False)
    return [base, WHITE], chosen.assign(**{TYPE_COLUMN: "red"}).reset_index(drop=True)


def build_image(env: dict[str, str], made: list[str]) -> str:
    """`make bento` and `make image` on the loop's pins: the image's name (added to made, removed at the end)."""
    bento = command("deploy/bento.py", env=env)[1].strip().splitlines()[-1]
    name = f"{IMAGE}:{bento.split(':')[1]}"
    command("deploy/image.py", "build", "--bento", bento, "--tag", name, env=env)
    made.append(name)
    return name


def grade(replicas: Replicas, wines: pd.DataFrame) -> tuple[list[str], list[float], str]:
    """The wines graded through HAProxy in batches: their ids, grades, and the model that graded them."""
    ids: list[str] = []
    grades: list[float] = []
    model = ""
    with httpx.Client(base_url=replicas.url, timeout=60) as http:
        for start in range(0, len(wines), LIST):
            rows = wines.iloc[start : start + LIST]
            samples = rows[[*FEATURE_NAMES, TYPE_COLUMN]].to_dict(orient="records")
            reply = http.post("/predict_batch", json={"model": "sklearn", "samples": samples})
            reply.raise_for_status()
            model = reply.json()["model"]
            ids += [p["id"] for p in reply.json()["predictions"]]
            grades += [p["quality"] for p in reply.json()["predictions"]]
    return ids, grades, model


def send_feedback(replicas: Replicas, ids: list[str], truth: list[int]) -> int:
    """The true grades to /feedback through HAProxy, in lists: how many were stored anew."""
    new = 0
    with httpx.Client(base_url=replicas.url, timeout=60) as http:
        for start in range(0, len(ids), LIST):
            body = [
                {"id": i, "quality": q}
                for i, q in zip(ids[start : start + LIST], truth[start : start + LIST], strict=True)
            ]
            reply = http.post("/feedback", json=body)
            if reply.status_code != 200:
                sys.exit(f"loop: /feedback answered {reply.status_code}: {reply.text[:500]}")
            new += sum(s["new"] for s in reply.json()["stored"])
    return new


class Table:
    """The summary: one row per step, what was done and what came of it."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, float]] = []
        self.started = time.monotonic()

    def add(self, step: str, done: str, result: str) -> None:
        self.rows.append((step, done, result, time.monotonic() - self.started))
        self.started = time.monotonic()
        log(f"{step}: {result}")

    def print(self) -> None:
        widths = [max(len(str(r[i])) for r in [("step", "done", "result", 0), *self.rows]) for i in range(3)]
        line = "  ".join(f"{{:{w}}}" for w in widths) + "  {:>6}"
        print(line.format("step", "what was done", "result", "s"))
        for step, done, result, seconds in self.rows:
            print(line.format(step, done, result, f"{seconds:.0f}"))


def loop(args: argparse.Namespace, table: Table, made: list[str]) -> int:
    pins = WORK / "model-pins.json"
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(get_settings().models.pins, pins)
    env = {"WINE_MODEL_PINS": str(pins)}
    files, wines = hold_back(args.held_back, args.seed)
    data = ["--data", *map(str, files)]
    served = json.loads(command("-m", "train.sklearn_model", *data, env=env)[1])["tag"]
    first = build_image(env, made)
    table.add("0 set-up", f"sklearn without {len(wines)} red wines; its image", f"{served} in {first}")

    state = WORK / "state.json"
    replicas = up(first, args.replicas)
    replicas.save(state)
    try:
        ids, grades, model = grade(replicas, wines)
        truth = wines[TARGET].astype(int).tolist()
        mae = sum(abs(g - t) for g, t in zip(grades, truth, strict=True)) / len(truth)
        table.add("1 serve", f"{args.replicas} replicas; {len(ids)} held-back wines graded", f"{model}: MAE {mae:.3f}")

        stored = send_feedback(replicas, ids, truth)
        table.add("2 feedback", f"{len(truth)} true grades to POST /feedback", f"{stored} stored")

        env_capture = {**env, "WINE_CAPTURE_URL": replicas.admin_url}
        challenger = json.loads(command("-m", "train.sklearn_model", "--with-feedback", *data, env=env_capture)[1])
        gate = ["-m", "train.promote", "--kind", "sklearn", "--challenger", challenger["tag"], *data]
        status, _ = command(*gate, *(["--force"] if args.force else []), env=env_capture, ok=(0, 1), show=True)
        verdict = "refused: not pinned" if status else "pinned (--force)" if args.force else "passed: pinned"
        table.add("3 retrain, gate", "sklearn with feedback; train.promote", f"{challenger['tag']} {verdict}")
        if status != 0:
            return 1

        second = build_image(env, made)
        target = replicas.image(second)
        summary = asyncio.run(rollout.roll(replicas, target, state, args.clients, args.rate))
        rollout.report(summary)
        load = summary["load"]
        moved = f"{summary['on_target']} of {len(summary['replicas'])} replicas on {second}"
        table.add(
            "4 rollout",
            f"image of the new pins; {load['requests']} requests under load",
            f"{load['failed']} failed; {moved}",
        )
        if not rollout.succeeded(summary):
            return 1

        answers = {name: rollout.answering_tags(replicas, name)["sklearn"] for name in replicas.ports}
        through = httpx.post(f"{replicas.url}/predict", json=wines.iloc[0][[*FEATURE_NAMES]].to_dict(), timeout=30)
        shown = f"HAProxy: {through.json()['model']}; replicas: {', '.join(sorted(set(answers.values())))}"
        table.add("5 new tag", "/predict through HAProxy and on each replica", shown)
        return 0 if set(answers.values()) == {challenger["tag"]} == {through.json()["model"]} else 1
    finally:
        replicas.down()
        state.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deploy/loop.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--held-back", type=int, default=600, help="red wines held back, then tasted (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="which wines are held back (default: %(default)s)")
    parser.add_argument("--replicas", type=int, default=2, choices=range(2, 6))
    parser.add_argument("--clients", type=int, default=4, help="load clients during the rollout (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=50.0, help="their requests/s in all (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="pin the new model whatever the gate finds")
    args = parser.parse_args(argv)
    table, made = Table(), []
    try:
        status = loop(args, table, made)
    finally:
        print()
        table.print()
        if made:
            Replicas(backend(), "").container("rmi", *made)
    sys.exit(status)


if __name__ == "__main__":
    main()
