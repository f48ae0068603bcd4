"""Training: the LightningModule (wiring only), callbacks, precision choice and the `fit` entry point."""
