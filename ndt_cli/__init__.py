"""The `ndt` command line: thin Typer commands over the `ndt` library."""
