"""Submissions and their documents."""
