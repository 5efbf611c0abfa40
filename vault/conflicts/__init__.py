"""Conflicts of interest: declarations, detection, challenges, sanctions and decisions."""
