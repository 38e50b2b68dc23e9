# cython: language_level=3
"""What the embedded store remembers of each transaction that earned points, for its refunds.

A replay of millions of events keeps one :class:`Transaction` per transaction that earned
points and one :class:`Award` per program that paid for it, so both are compiled records:
about half the memory of slotted Python objects, and made without a Python call by the fast
lane (:mod:`pointengine.lane.lane`). Neither can be part of a reference cycle (they hold strings,
integers and tuples of awards), so the cyclic garbage collector does not track them.
"""

cimport cython


@cython.no_gc
@cython.final
cdef class Award:
    """One award a transaction earned, remembered so that a refund can take its share back:
    the program and version, the points, the provider they flow to and the cap keys they
    count in."""

    def __init__(self, str program, int version, int64_t points, str provider,
                 tuple caps) -> None:
        self.program = program
        self.version = version
        self.points = points
        self.provider = provider
        self.caps = caps

    def __reduce__(self) -> tuple[object, ...]:
        return (Award, (self.program, self.version, self.points, self.provider, self.caps))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Award):
            return NotImplemented
        return _fields(self) == _fields(<Award>other)

    def __hash__(self) -> int:
        return hash(_fields(self))

    def __repr__(self) -> str:
        return (f"Award(program={self.program!r}, version={self.version}, "
                f"points={self.points}, provider={self.provider!r}, caps={self.caps!r})")


@cython.no_gc
@cython.final
cdef class Transaction:
    """A transaction that earned points: its amount, what was refunded of it, its awards,
    who paid (``person|provider``) and, from its first refund on, the points each award has
    given back (``reversed``, None before)."""

    def __init__(self, int64_t amount, tuple awards, str payer) -> None:
        self.amount = amount
        self.refunded = 0
        self.awards = awards
        self.payer = payer
        self.reversed = None

    def __reduce__(self) -> tuple[object, ...]:
        return (_transaction, (self.amount, self.refunded, self.awards, self.payer,
                               self.reversed))

    def __repr__(self) -> str:
        return (f"Transaction(amount={self.amount}, refunded={self.refunded}, "
                f"awards={self.awards!r}, payer={self.payer!r}, reversed={self.reversed!r})")


cdef tuple _fields(Award award):
    return (award.program, award.version, award.points, award.provider, award.caps)


cdef Award new_award(str program, int version, int64_t points, str provider, tuple caps):
    """An :class:`Award` without the Python call (the lane makes one per award)."""
    cdef Award award = Award.__new__(Award)
    award.program = program
    award.version = version
    award.points = points
    award.provider = provider
    award.caps = caps
    return award


cdef Transaction new_transaction(int64_t amount, tuple awards, str payer):
    """A :class:`Transaction` without the Python call."""
    cdef Transaction tx = Transaction.__new__(Transaction)
    tx.amount = amount
    tx.refunded = 0
    tx.awards = awards
    tx.payer = payer
    tx.reversed = None
    return tx


def _transaction(int64_t amount, int64_t refunded, tuple awards, str payer,
                 reversed: list[int] | None) -> Transaction:
    """A :class:`Transaction` as pickled."""
    cdef Transaction tx = Transaction(amount, awards, payer)
    tx.refunded = refunded
    tx.reversed = reversed
    return tx
