"""The migration scripts, oldest first (`python -m wine_quality.capture revision -m ...` adds one)."""
