"""Reading, splitting, caching and augmenting Carvana data."""
