"""`ndt track` (being written)."""


def track() -> None:
    """Placeholder while the command is written."""
    raise NotImplementedError
