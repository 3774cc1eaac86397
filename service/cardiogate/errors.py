"""One exception hierarchy for the whole service.

Each edge maps these to its own vocabulary: a DIMSE status at the SCP, an HTTP status at
the API, a ``failed(reason)`` job state in the worker. Messages never contain patient
identifiers: UIDs, sizes and setting names only.
"""


class CardiogateError(Exception):
    """Base class of every error cardiogate raises on purpose."""


class ConfigurationError(CardiogateError):
    """A setting is missing, malformed or unsafe; raised at start-up."""


class InvalidUIDError(CardiogateError):
    """A UID that would name a file is not a valid DICOM UID."""


class DatasetError(CardiogateError):
    """A received dataset cannot be parsed or lacks a required attribute."""


class SpoolError(CardiogateError):
    """The spool could not durably store an instance (disk full, I/O error)."""


class StoreError(CardiogateError):
    """The database could not record or read a row."""


class NotAnalysableError(CardiogateError):
    """The series is valid DICOM but not what its task is made for (a contrast-enhanced CT
    sent for calcium scoring, say). The worker ends the job ``ignored`` with the message as
    its reason ("not scored: ..."), not ``failed``: nothing is wrong with the data."""
