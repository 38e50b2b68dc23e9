"""What the embedded store remembers of transactions that earned points (compiled)."""

class Award:
    """One award a transaction earned, remembered so that a refund can take its share back."""

    @property
    def program(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def points(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def caps(self) -> tuple[str, ...]: ...
    def __init__(self, program: str, version: int, points: int, provider: str,
                 caps: tuple[str, ...]) -> None: ...

class Transaction:
    """A transaction that earned points; ``reversed`` appears with its first refund."""

    amount: int
    refunded: int
    awards: tuple[Award, ...]
    payer: str
    reversed: list[int] | None
    def __init__(self, amount: int, awards: tuple[Award, ...], payer: str) -> None: ...
