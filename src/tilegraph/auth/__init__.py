"""Tokens, passwords, revocation and login throttling."""
