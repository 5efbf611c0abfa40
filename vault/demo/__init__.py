"""The demo (``vault init --demo``): fictional consortia, accounts and their submitted
applications. ``world`` makes the consortia and accounts, ``documents`` their PDFs (with the
flaws screening must find), ``submissions`` uploads them, saves the resource requests and
submits, each step audited in the applicant's name."""
