"""Hostile input, tried as an attacker would: each case asserts the good outcome, and that
other users were unaffected."""
