"""Database suites: lifecycle + clients for real systems."""
