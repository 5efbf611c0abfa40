"""The rehearsal of a programme's whole evaluation (``vault demo simulate``) in a scratch vault:
``run`` drives it, ``applications`` makes the consortia apply, ``stages`` runs each stage's
panel and round, ``scores`` makes up plausible scores from a seeded random generator."""
