"""`python -m wine_quality.capture migrate`: upgrade the capture database; `revision`: write a new migration."""

from __future__ import annotations

import argparse
import logging
import sys

from alembic import command

from wine_quality.capture.migrate import alembic_config, head, upgrade
from wine_quality.capture.tables import make_engine
from wine_quality.settings import CaptureSettings, sqlalchemy_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wine_quality.capture", description=__doc__)
    parser.add_argument("--url", help="database URL (default: WINE_CAPTURE_URL, else the SQLite file)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("migrate", help="upgrade the database to the newest migration (safe to run concurrently)")
    revision = verbs.add_parser("revision", help="write a new migration script into the package")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--autogenerate", action="store_true", help="compare the tables with a migrated database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    url = sqlalchemy_url(args.url) if args.url else CaptureSettings().database_url()
    engine = make_engine(url)
    try:
        if args.verb == "migrate":
            print(f"capture database {engine.url.render_as_string(hide_password=True)} at revision {upgrade(engine)}")
        else:
            config = alembic_config()
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                # numbered in sequence, in files named r<number>_<slug>.py: a module name mypy and ruff accept
                number = f"{int(head()) + 1:04d}"
                config.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
                command.revision(config, message=args.message, autogenerate=args.autogenerate, rev_id=number)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
