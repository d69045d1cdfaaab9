"""The seed project's Flask app, rebuilt from its README for the benchmark only: what our service replaces.

What the seed README describes, kept as it was, costs included:
- `GET /train` fits scikit-learn's LinearRegression on the red wine file, saves it in the models folder and answers
  `{"r2": ...}`;
- `POST /predict` loads that model from disk inside the request (its "TODO abstract model loading") and grades the
  JSON sample, names with spaces, unchecked ("FIXME check data"), through a one-row DataFrame: the model was fitted
  on the file's DataFrame (scikit-learn warns on every request fed a bare list), and this is what reproduces the
  latency the latency issue measured on the seed itself (2.3 ms at one client; a bare list gave 1.2 ms);
- `POST /predict_net` loads the dense net that `benchmarks.seed_net` saved (torch.save, loaded per request) and turns
  the JSON dict into a pandas DataFrame first (its "FIXME is it needed to transform dict into DataFrame?");
- Flask's own development server with `debug=True` (its last FIXME), threaded, logging every request. The reloader is
  off (`use_reloader=False`) so that the benchmark can stop the one process it started.

The models folder is a command-line option (the seed's "TODO allow other name for models folder"), so the benchmark
keeps it in a temporary folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import pandas as pd
import torch
from flask import Flask, Response, jsonify, request
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

DATA = Path(__file__).resolve().parent.parent / "data" / "winequality-red.csv"
TARGET = "quality"
FEATURES = [name for name in pd.read_csv(DATA, nrows=0).columns if name != TARGET]

app = Flask(__name__)
app.config["MODELS"] = Path("models")


def _models() -> Path:
    return Path(app.config["MODELS"])


@app.get("/train")
def train() -> Response:
    """Fit a linear regression on a fixed split of the red wines, save it, answer its test R2."""
    frame = pd.read_csv(DATA)
    x_train, x_test, y_train, y_test = train_test_split(frame[FEATURES], frame[TARGET], test_size=0.2, random_state=42)
    model = LinearRegression().fit(x_train, y_train)
    _models().mkdir(parents=True, exist_ok=True)
    joblib.dump(model, _models() / "linear_regression.joblib")
    return jsonify(r2=round(float(r2_score(y_test, model.predict(x_test))), 2))


@app.post("/predict")
def predict() -> Response:
    """Load the linear model from disk and grade one wine."""
    model = joblib.load(_models() / "linear_regression.joblib")
    frame = pd.DataFrame([request.get_json()])  # the model was fitted on a DataFrame: it is fed one, as in /train
    return jsonify(quality=round(float(model.predict(frame[FEATURES])[0]), 2))


@app.post("/predict_net")
def predict_net() -> Response:
    """Load the dense net from disk and grade one wine, through a one-row DataFrame."""
    net = torch.load(_models() / "dense", weights_only=False)
    frame = pd.DataFrame([request.get_json()])
    with torch.no_grad():
        quality = float(net(torch.tensor(frame.to_numpy(dtype="float32")))[0])
    return jsonify(quality=round(quality, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, required=True, help="where /train and seed_net save the models")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    app.config["MODELS"] = args.models
    app.run(host="127.0.0.1", port=args.port, debug=True, use_reloader=False)


if __name__ == "__main__":
    main()
