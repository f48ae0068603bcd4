"""Model registry, the seed CNN and the ModelSpec that travels with every checkpoint."""
