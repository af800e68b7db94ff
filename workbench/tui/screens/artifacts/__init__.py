"""The Artifacts mode: versions, lineage, labels and transfers."""
