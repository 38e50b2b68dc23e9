"""Where state lives and how claims are applied: the store contract, the embedded store and
its compiled tables, the Redis store, the write-back of an exclusive replay."""
