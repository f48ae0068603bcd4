"""Run-level results: evaluating a run (`evaluate_run`), the HTML/JSON report with its plots, gallery and model
card, and comparisons between runs. The numbers come from the pure functions of `radcnn.evaluation`."""
