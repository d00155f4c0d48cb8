"""One error root. The CLI turns every EnergyLensError into one line and exit code 2."""


class EnergyLensError(Exception):
    """Base class of every error the user can cause (bad input, unknown names, bad files)."""


class DataError(EnergyLensError):
    """A data file violates the profiling-record schema."""

    def __init__(self, message: str, *, path=None, row=None, column=None):
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path, self.row, self.column = path, row, column


class CatalogError(EnergyLensError):
    """Unknown model or accelerator, or a malformed catalog file."""


class ModelFileError(EnergyLensError):
    """A model file is malformed, tampered with or of an unknown schema version."""


class NotFittedError(EnergyLensError):
    """A model was used before it was fitted."""


class InfeasibleError(EnergyLensError):
    """No deployment satisfies the constraints."""


class NoGpuError(EnergyLensError):
    """No NVIDIA GPU could be found for profiling."""
