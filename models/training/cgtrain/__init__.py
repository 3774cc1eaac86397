"""Training code for cardiogate's models (PyTorch, CPU build; the service never imports it).

Every model here is trained on synthetic phantoms from ``cardiogate_phantoms`` only and is
not for clinical use.
"""
