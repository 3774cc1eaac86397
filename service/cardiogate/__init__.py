"""cardiogate: a DICOM-integrated inference service for cardiology.

Research software. Every model shipped with it was trained on synthetic phantoms and
is not for clinical use.
"""

__version__ = "0.1.0"
