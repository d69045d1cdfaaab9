"""An ASGI app built on first use: how the entry mounts its FastAPI routes without every process importing them.

BentoML imports service.py whole in every serving process, model services included, and a mounted app must exist
when the entry class is defined. This stands in for the app until the entry service touches it (its `__init__` puts
the data plane in the app's state): only the entry process imports FastAPI and the protocols. It is a Starlette app
whose routes are the real app's, because BentoML mounts an app at "/" passively, matching only a Starlette app's own
routes (any other app would take every path, /docs.json included). BentoML documents the routes of a mounted FastAPI
app it can see; this one it cannot, so wine_quality/openapi_doc.py adds them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from wine_quality.guard import Receive, Scope, Send


class LazyApp(Starlette):
    """The app that `factory` ("package.module:function") makes, made the first time it is needed."""

    def __init__(self, factory: str) -> None:
        super().__init__()
        self.factory = factory
        self._app: Any = None

    @property
    def routes(self) -> list[BaseRoute]:
        """The real app's routes (what BentoML's mount matches a path against)."""
        found: list[BaseRoute] = self.app.routes
        return found

    @property
    def app(self) -> Any:
        """The app itself, made now if it is not yet."""
        if self._app is None:
            module, _, name = self.factory.partition(":")
            make: Callable[[], Any] = getattr(importlib.import_module(module), name)
            self._app = make()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
