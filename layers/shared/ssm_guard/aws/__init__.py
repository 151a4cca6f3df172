"""Small adapters, one per AWS service the guard touches. Decisions live elsewhere."""
