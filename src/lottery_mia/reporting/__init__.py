"""Reporting: the summaries, the report's tables and verdicts, and the page."""
