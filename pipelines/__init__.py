"""Extract and load: dlt sources for each vendor, the shared HTTP layer and the pipeline builder."""
