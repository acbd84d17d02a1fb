"""`python -m ndt_cli ...`: the `ndt` command without its console script."""

from ndt_cli.main import main

main()
