"""`ndt layers` (being written)."""


def layers() -> None:
    """Placeholder while the command is written."""
    raise NotImplementedError
