"""Assignments of reviewers to submissions, per stage."""
