# The compiled interface of pointengine.store.wire, for the fast lane
# (pointengine/lane/lane.pyx): a growing byte buffer, and the records the Redis store keeps.
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from pointengine.store.records cimport Transaction


cdef struct Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int reserve(Buffer* b, Py_ssize_t more) except -1


cdef inline void put(Buffer* b, const char* text, Py_ssize_t size) noexcept:
    memcpy(b.data + b.size, text, size)
    b.size += size


cdef inline void put_quoted(Buffer* b, const char* text, Py_ssize_t size) noexcept:
    """``text`` as a JSON string (the lane writes ids only: no escapes)."""
    b.data[b.size] = b'"'
    memcpy(b.data + b.size + 1, text, size)
    b.data[b.size + 1 + size] = b'"'
    b.size += size + 2


cdef inline void put_integer(Buffer* b, int64_t value) noexcept:
    cdef char[24] digits
    cdef int n = 0
    cdef uint64_t rest = <uint64_t>(-value) if value < 0 else <uint64_t>value
    if value < 0:
        b.data[b.size] = b'-'
        b.size += 1
    while True:
        digits[n] = <char>(48 + rest % 10)
        n += 1
        rest //= 10
        if rest == 0:
            break
    while n > 0:
        n -= 1
        b.data[b.size] = digits[n]
        b.size += 1


cdef bytes transaction_bytes(Transaction tx)
