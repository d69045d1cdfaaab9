"""`make evaluate`: nested repeated cross-validation of every candidate model, verdicts against the paper, report."""
