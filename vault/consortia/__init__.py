"""Consortia: a lead organisation, its confidential partner list, and its applicant users."""
