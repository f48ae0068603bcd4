"""Inference shared by the CLI's `predict` and the HTTP API."""
