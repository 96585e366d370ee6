"""Helpers every layer may use: image loading and argument checks (`image_io`), the click type and click simulator
(`clicker`), mask overlays (`visualize`). They import nothing else from the package."""
