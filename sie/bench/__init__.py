"""Selection, retraining and evaluation on the judged holdout."""
