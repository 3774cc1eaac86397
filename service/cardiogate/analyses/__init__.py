"""What the tasks' analyses share: loading CT volumes and XA cines (pixels, frames,
geometry), resampling to a model's grid, and the offline analyser (``cardiogate analyze``).
Each task's own analysis lives in its package (``cardiogate.tasks.<name>``)."""
