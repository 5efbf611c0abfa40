"""Dual control: a second officer's time-limited approval to read a conflicted consortium."""
