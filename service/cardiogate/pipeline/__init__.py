"""Series assembly, routing rules and the job worker."""
