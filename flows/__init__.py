"""Prefect flows over the textmine library: mine-corpus, watch-publications, serve."""
