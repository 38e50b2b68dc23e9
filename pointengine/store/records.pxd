# The compiled interface of pointengine.store.records, for the fast lane
# (pointengine/lane/lane.pyx).
from libc.stdint cimport int64_t


cdef class Award:
    cdef readonly str program
    cdef readonly int version
    cdef readonly int64_t points
    cdef readonly str provider
    cdef readonly tuple caps


cdef class Transaction:
    cdef public int64_t amount
    cdef public int64_t refunded
    cdef public tuple awards
    cdef public str payer
    cdef public list reversed


cdef Award new_award(str program, int version, int64_t points, str provider, tuple caps)
cdef Transaction new_transaction(int64_t amount, tuple awards, str payer)
