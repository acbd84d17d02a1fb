"""The reference API's export functions, one submodule per format as ndtracker has them:
`ndt.export.hdf5` (`export_to_hdf5`, `load_from_hdf5`, `append_to_hdf5`), `ndt.export.csv`
(`export_to_csv`, `load_from_csv`) and `ndt.export.json` (`export_to_json`,
`load_from_json`, `export_metadata`), re-exported here on first use. The tidy table of a
results file (`ndt export`) is `ndt.io.export`'s.
"""

from __future__ import annotations

from ndt.lazy import lazy_names

_FACE = {
    "export_to_hdf5": "ndt.export.hdf5",
    "load_from_hdf5": "ndt.export.hdf5",
    "append_to_hdf5": "ndt.export.hdf5",
    "export_to_csv": "ndt.export.csv",
    "load_from_csv": "ndt.export.csv",
    "export_to_json": "ndt.export.json",
    "load_from_json": "ndt.export.json",
    "export_metadata": "ndt.export.json",
}

__all__ = sorted(_FACE)


__getattr__ = lazy_names(__name__, _FACE)
