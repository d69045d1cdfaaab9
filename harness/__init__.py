"""What tests, load tests and benchmarks share: a real `bentoml serve` on a free port, and real traffic to it."""
