"""The learning loop: reviewers' labels, their fusion and agreement, review selection,
shadow mode and promotion."""
