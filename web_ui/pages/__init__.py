"""The page routers, one module per feature."""
