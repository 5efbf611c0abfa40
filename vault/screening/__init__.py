"""Screening: completeness and eligibility checks before the written evaluation."""
