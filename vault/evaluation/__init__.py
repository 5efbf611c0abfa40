"""Evaluation: score sheets, aggregation and ranking of a stage's submissions."""
