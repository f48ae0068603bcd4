"""Data: readers, dataset layouts, splits, transforms and the synthetic chest radiograph phantom."""
