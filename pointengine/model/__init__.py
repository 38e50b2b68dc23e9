"""What flows through the pipeline: canonical events, persons, ledger lines, refusal codes,
the My Number guard, the local government codes. Depends on nothing else of the package."""
