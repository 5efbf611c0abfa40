"""Non-disclosure agreements: versioned texts per programme and reviewers' acceptances."""
