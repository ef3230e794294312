"""Networks, losses, MC dropout and the LightningModule."""
