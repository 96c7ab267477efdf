"""Procedures: Python functions deployed with the coordinator, each call one transaction."""
