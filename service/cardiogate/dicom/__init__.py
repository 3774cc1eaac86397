"""The DICOM edge: listener (SCP), spool, sender (SCU), UIDs."""
