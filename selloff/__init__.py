"""selloff: measure a cross-market equity sell-off and check commentary against the data."""
