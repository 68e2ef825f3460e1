"""Feeding, replaying and verifying event logs."""
