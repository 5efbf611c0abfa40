"""The web layer: Flask blueprints, templates, forms and the JSON API. Handlers stay thin."""
