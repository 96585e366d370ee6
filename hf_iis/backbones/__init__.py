"""Image backbones written for this project (no third-party model code)."""
