"""Using a trained model: a run read back with its preprocessing, its predictions on new
inputs (predict), and its scores on labelled data (evaluate)."""
