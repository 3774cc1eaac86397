"""The learning loop: labels reviewers assert, their fusion and agreement (issue 20)."""
