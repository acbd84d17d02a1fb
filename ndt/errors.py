"""Exceptions the library raises for problems a user can fix."""


class NdtError(ValueError):
    """Base class: a message that names what failed and what to do next.

    A ValueError, so that code written against the reference library catches it.
    """


class CheckpointError(NdtError):
    """A checkpoint cannot be found, read, or loaded into the model."""


class WeightsMismatchError(CheckpointError):
    """A checkpoint's tensors do not fit the model (missing, unexpected or mis-shaped keys)."""


class ModelSpecError(NdtError):
    """A model specification cannot be resolved into an nn.Module."""


class ProbeError(NdtError):
    """The probe batch is missing, malformed, or does not fit the model."""


class ResultsFormatError(NdtError):
    """A results file is missing, unreadable, or of an unsupported format."""


class ConfigMismatchError(NdtError):
    """Options differ from those recorded in an existing results file."""


class DetectorError(NdtError):
    """A curve cannot be tested for jumps, or a detector's options are invalid."""


def describe(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
