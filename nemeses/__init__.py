"""Imported as jepsy.nemeses."""
