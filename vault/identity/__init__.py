"""Identity: accounts, roles, passwords, sessions and multi-factor authentication."""
