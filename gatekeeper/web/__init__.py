"""The web review queue (FastAPI + server-rendered Jinja2 pages) and its JSON API."""

from gatekeeper.web.app import create_app, loopback_host

__all__ = ["create_app", "loopback_host"]
