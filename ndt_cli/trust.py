"""`ndt trust`: consent to the model code a checkpoint folder's ndt.toml names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndt_cli._output import out


def trust(
    ckpt_dir: Annotated[
        Path,
        typer.Argument(help="Checkpoint folder whose ndt.toml names the model.", file_okay=False),
    ],
) -> None:
    """Allow `ndt track`, `ndt layers` and `ndt compare` to run the code DIR's ndt.toml names.

    Records the folder and the sha256 of its ndt.toml in your trust file; if the ndt.toml
    changes, the commands refuse it again until you rerun `ndt trust`. Read the ndt.toml
    (and the file it names) first: trusting it lets it run any Python code as you.

    Example:

        ndt trust runs/exp7/ckpts

    See docs/commands/trust.md.
    """
    # numpy and torch load here, not at import: `ndt trust --help` stays fast.
    from ndt.models.trust import describe_code, runs_code, trust_file, trust_folder

    trusted = trust_folder(ckpt_dir)
    if trusted.model is None or not runs_code(trusted.model):
        what = f"the built-in model {trusted.model.target}" if trusted.model else "no model"
        runs = f"it names {what}, which needs no consent"
    else:
        runs = f"it may now run {describe_code(trusted.model)}"
    out.print(
        f"Trusted {trusted.path} (ndt.toml sha256 {trusted.manifest_sha256[:16]}...): {runs}. "
        f"Recorded in {trust_file()}.",
        soft_wrap=True,
        markup=False,
    )
