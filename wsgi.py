"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``. Settings come from the environment."""

from vault.app import create_app
from vault.settings import Settings

app = create_app(Settings.from_env())
