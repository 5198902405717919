"""Developer tools (``python -m pivot.tools.<name>``)."""
