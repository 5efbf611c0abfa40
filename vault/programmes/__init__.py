"""Programmes: calls for applications, defined as data in ``policies/programmes``."""
