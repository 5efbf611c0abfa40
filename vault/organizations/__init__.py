"""Organisations: companies, universities, research institutes and public bodies."""
