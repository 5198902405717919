"""Training recipes that produce the models shipped in ``pivot.zoo`` (need ``pip install .[torch]``)."""
