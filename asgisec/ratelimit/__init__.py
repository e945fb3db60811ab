"""Rate limiting: limit syntax, route rules, and the storage backends behind one atomic call."""
