"""Scenario worker modules run by the supervisor tests in real worker processes."""
