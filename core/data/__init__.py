"""Real ECG data: readers, ingest into a memory-mapped store, and the dataset that reads it."""
