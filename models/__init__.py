"""Tortoise models and the domain operations on them: the one place that enforces the rules.

Knows no transport: the API and the bridge call these functions and publish what they return.
"""
