"""Learned sentence coder."""
