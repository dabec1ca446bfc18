"""The ``custodia`` console script."""
