"""Payload capture and feedback: every graded wine kept with an id, true grades received later, live accuracy.

Nothing is imported here, so that reading CaptureSettings costs no SQLAlchemy import. The service's entry points:

- `wine_quality.settings.CaptureSettings` (the `capture` group of the settings);
- `wine_quality.capture.store.open_capture(settings) -> Capture | None`, then `Capture.record(CaptureBatch)` on the
  request path, `Capture.feedback([(id, grade), ...])`, `Capture.live()`, `Capture.exposition()`,
  `Capture.labelled(since)` and `Capture.close()` at shutdown;
- `wine_quality.capture.ids.new_ids(n)`: the ids to give the wines of a request;
- `wine_quality.capture.errors`: what the HTTP layer maps to 404, 409, 422 and 503;
- `python -m wine_quality.capture migrate`: upgrade the database (the service also does it at start-up).
"""
