"""Evaluation (`lmjax eval`): held-out loss and bits per byte, math accuracy, tool-call validity, abstention
and multiple-choice accuracy, written as WORKDIR/eval.json and eval.md. See `lmjax.eval.stage`."""
