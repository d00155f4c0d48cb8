"""One error root. The CLI turns every EnergyLensError into one line and exit code 2."""


class EnergyLensError(Exception):
    """Base class of every error the user can cause (bad input, unknown names, bad files)."""


class DataError(EnergyLensError, ValueError):
    """A data file or table violates the profiling-record schema (a ValueError, as scikit-learn's estimators
    raise for bad input)."""

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


class NotFittedError(EnergyLensError, ValueError, AttributeError):
    """A model was used before it was fitted. What is raised is also scikit-learn's NotFittedError: an instance
    of a subclass of both, made when one is first raised, so that importing this module (every command does, at
    start-up) does not import scikit-learn (about a second)."""

    def __new__(cls, *args, **kwargs):
        if cls is NotFittedError:
            cls = _sklearn_not_fitted()
        return super().__new__(cls, *args, **kwargs)

    def __reduce__(self):
        return NotFittedError, self.args


_SKLEARN_NOT_FITTED: list[type] = []


def _sklearn_not_fitted() -> type:
    """NotFittedError that is also sklearn.exceptions.NotFittedError (built once)."""
    if not _SKLEARN_NOT_FITTED:
        from sklearn.exceptions import NotFittedError as SklearnNotFitted

        _SKLEARN_NOT_FITTED.append(type("NotFittedError", (NotFittedError, SklearnNotFitted),
                                        {"__module__": __name__, "__doc__": NotFittedError.__doc__}))
    return _SKLEARN_NOT_FITTED[0]


class InfeasibleError(EnergyLensError):
    """No deployment satisfies the constraints."""


class NoGpuError(EnergyLensError):
    """No NVIDIA GPU could be found for profiling."""
