"""Alembic migrations of the capture database; wine_quality.capture.migrate runs them (no alembic.ini)."""
