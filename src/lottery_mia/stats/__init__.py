"""Statistics: point metrics, resampling the attack rows, verdicts over seeds and rows."""
