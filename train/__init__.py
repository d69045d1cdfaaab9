"""Training command lines: each fits one model and saves it, with its metadata, to the BentoML model store."""
