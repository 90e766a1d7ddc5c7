"""The Starlette HTTP adapter: routes, bearer auth, the JSON envelope."""

from api.app import create_app

__all__ = ["create_app"]
