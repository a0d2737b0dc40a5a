"""One module per wizard step, each exporting its routes."""
