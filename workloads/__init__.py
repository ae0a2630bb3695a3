"""Imported as jepsy.workloads."""
