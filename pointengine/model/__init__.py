"""What flows through the pipeline: canonical events, persons, ledger lines, refusal codes,
the My Number guard, bounds on an input's size and nesting, the local government codes, and
output files written whole or cut back.
Depends on nothing else of the package."""
