"""The protocols beside BentoML's JSON APIs, as one FastAPI app that the entry service mounts: V2, MLflow's
scoring protocol, /monitoring and /models. Each route is a thin adapter over the entry's data plane."""
