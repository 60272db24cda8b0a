"""Command-line edge."""
