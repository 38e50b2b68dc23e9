# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The Redis protocol and the records the Redis store keeps, written once for every path.

The exclusive replay's write-back (:mod:`pointengine.store.writeback`), the replay's batches for
the Redis store's script (:mod:`pointengine.replay.redis_replay`) and the compiled lane all
encode their commands and transaction records here: :func:`command` and :func:`bulk_strings`
for any command, :func:`ledger_commands` for the ledger's ``XADD`` commands, :func:`hmget`,
and :func:`transaction_record` for a transaction as the store's script keeps it. Compiled
because the lane writes a record per transaction that earns points.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLong
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport snprintf
from libc.string cimport memcmp

from pointengine.store.records cimport Award, Transaction


cdef int reserve(Buffer* b, Py_ssize_t more) except -1:
    """Room for ``more`` bytes (the first call allocates)."""
    cdef char* grown
    if b.size + more <= b.capacity:
        return 0
    if b.capacity == 0:
        b.capacity = 1 << 16
    while b.size + more > b.capacity:
        b.capacity *= 2
    grown = <char*>PyMem_Realloc(b.data, b.capacity)
    if grown == NULL:
        raise MemoryError()
    b.data = grown
    return 0


def transaction_record(Transaction tx) -> bytes:
    """A transaction as the Redis store's script keeps it (see :mod:`redis_store`):
    ``amount|refunded|payer`` when it earned nothing, else the msgpack array
    ``[amount, refunded, [[program, version, points, provider, reversed, *caps]...], payer]``,
    each item in msgpack's shortest form, as ``msgpack.packb`` writes it."""
    return transaction_bytes(tx)


# reused: a record is written in one go, under the GIL
cdef Buffer _record_buffer = Buffer(NULL, 0, 0)


cdef bytes transaction_bytes(Transaction tx):
    cdef Buffer* out = &_record_buffer
    cdef Award award
    cdef Py_ssize_t n = len(tx.awards), k, c
    cdef list back = tx.reversed
    if n == 0:
        return b"%d|%d|%s" % (tx.amount, tx.refunded, tx.payer.encode())
    out.size = 0
    _msgpack_array(out, 4)
    _msgpack_integer(out, tx.amount)
    _msgpack_integer(out, tx.refunded)
    _msgpack_array(out, n)
    for k in range(n):
        award = <Award>tx.awards[k]
        _msgpack_array(out, 5 + len(award.caps))
        _msgpack_string(out, award.program)
        _msgpack_integer(out, award.version)
        _msgpack_integer(out, award.points)
        _msgpack_string(out, award.provider)
        _msgpack_integer(out, 0 if back is None else PyLong_AsLongLong(back[k]))
        for c in range(len(award.caps)):
            _msgpack_string(out, award.caps[c])
    _msgpack_string(out, tx.payer)
    return PyBytes_FromStringAndSize(out.data, out.size)


cdef inline int _msgpack_array(Buffer* b, Py_ssize_t n) except -1:
    """An array's header."""
    reserve(b, 5)
    if n < 16:
        _tagged(b, 0x90 | n, 0, 0)
    elif n < 0x10000:
        _tagged(b, 0xdc, n, 2)
    else:
        _tagged(b, 0xdd, n, 4)
    return 0


cdef inline void _tagged(Buffer* b, int tag, uint64_t value, int width) noexcept:
    """A type tag, then ``value`` big-endian in ``width`` bytes."""
    cdef int k
    b.data[b.size] = <char>tag
    for k in range(width):
        b.data[b.size + width - k] = <char>(value >> (8 * k) & 0xff)
    b.size += 1 + width


cdef inline int _msgpack_integer(Buffer* b, int64_t value) except -1:
    """An integer in its shortest form."""
    cdef uint64_t bits = <uint64_t>value
    reserve(b, 9)
    if 0 <= value < 0x80 or -32 <= value < 0:
        _tagged(b, value & 0xff, 0, 0)
    elif value >= 0:
        if value < 0x100:
            _tagged(b, 0xcc, bits, 1)
        elif value < 0x10000:
            _tagged(b, 0xcd, bits, 2)
        elif value < 0x100000000:
            _tagged(b, 0xce, bits, 4)
        else:
            _tagged(b, 0xcf, bits, 8)
    elif value >= -0x80:
        _tagged(b, 0xd0, bits, 1)
    elif value >= -0x8000:
        _tagged(b, 0xd1, bits, 2)
    elif value >= -0x80000000:
        _tagged(b, 0xd2, bits, 4)
    else:
        _tagged(b, 0xd3, bits, 8)
    return 0


cdef int _msgpack_string(Buffer* b, str value) except -1:
    """A string as UTF-8, with its header (reserves what it needs)."""
    cdef Py_ssize_t size = 0
    cdef const char* text = PyUnicode_AsUTF8AndSize(value, &size)
    reserve(b, size + 5)
    if size < 32:
        _tagged(b, 0xa0 | size, 0, 0)
    elif size < 0x100:
        _tagged(b, 0xd9, size, 1)
    elif size < 0x10000:
        _tagged(b, 0xda, size, 2)
    else:
        _tagged(b, 0xdb, size, 4)
    put(b, text, size)
    return 0


def hmget(bytes key, list ids) -> bytes:
    """``HMGET key id...`` in the Redis protocol."""
    return command(b"HMGET", [key, *ids])


def bulk_strings(list items) -> bytes:
    """Each item (bytes, an ASCII or UTF-8 str, or an int) as a bulk string of the Redis
    protocol, one after the other: the arguments of a command whose header the caller writes."""
    cdef Buffer out = Buffer(NULL, 0, 0)
    cdef const char* text
    cdef Py_ssize_t size
    cdef char[24] digits
    try:
        for item in items:
            if isinstance(item, bytes):
                text = PyBytes_AS_STRING(item)
                size = PyBytes_GET_SIZE(item)
            elif isinstance(item, str):
                text = PyUnicode_AsUTF8AndSize(item, &size)
            else:
                size = snprintf(digits, 24, "%lld", <long long>item)
                text = digits
            reserve(&out, size + 32)
            put(&out, b"$", 1)
            put_integer(&out, size)
            put(&out, b"\r\n", 2)
            put(&out, text, size)
            put(&out, b"\r\n", 2)
        return PyBytes_FromStringAndSize(out.data, out.size)
    finally:
        PyMem_Free(out.data)


def ledger_commands(list lines, bytes stream) -> bytes:
    """The ledger's JSON lines (flat objects of ids, integers and nulls, as the store writes
    them) as ``XADD stream * field value...`` commands of the Redis protocol, one per line (a
    null field is left out); raises ValueError for a line of another shape."""
    cdef Buffer out = Buffer(NULL, 0, 0)
    cdef const char* s
    cdef Py_ssize_t n, i, k, pairs
    cdef Py_ssize_t[64] spans  # key start, key size, value start, value size
    try:
        for line in lines:
            s = PyBytes_AS_STRING(line)
            n = PyBytes_GET_SIZE(line)
            while n > 0 and (s[n - 1] == b'\n' or s[n - 1] == b' '):
                n -= 1
            if n < 2 or s[0] != b'{' or s[n - 1] != b'}':
                raise ValueError(f"not a ledger line: {line!r}")
            i = 1
            pairs = 0
            while i < n - 1:
                if s[i] != b'"' or pairs == 16:
                    raise ValueError(f"not a ledger line: {line!r}")
                k = i + 1
                while k < n and s[k] != b'"' and s[k] != b'\\':
                    k += 1
                if k >= n - 2 or s[k] != b'"' or s[k + 1] != b':':
                    raise ValueError(f"not a ledger line: {line!r}")
                spans[4 * pairs] = i + 1
                spans[4 * pairs + 1] = k - i - 1
                i = k + 2
                if s[i] == b'"':
                    k = i + 1
                    while k < n and s[k] != b'"' and s[k] != b'\\':
                        k += 1
                    if k >= n or s[k] != b'"':
                        raise ValueError(f"not a ledger line: {line!r}")
                    spans[4 * pairs + 2] = i + 1
                    spans[4 * pairs + 3] = k - i - 1
                    i = k + 1
                else:
                    k = i
                    while k < n - 1 and s[k] != b',':
                        k += 1
                    spans[4 * pairs + 2] = i
                    spans[4 * pairs + 3] = k - i
                    if k - i == 4 and memcmp(s + i, b"null", 4) == 0:
                        spans[4 * pairs + 3] = -1
                    i = k
                if spans[4 * pairs + 3] >= 0:
                    pairs += 1
                if s[i] == b',':
                    i += 1
                elif i != n - 1:
                    raise ValueError(f"not a ledger line: {line!r}")
            reserve(&out, 2 * n + 64 * pairs + 64 + PyBytes_GET_SIZE(stream))
            put(&out, b"*", 1)
            put_integer(&out, 3 + 2 * pairs)
            put(&out, b"\r\n$4\r\nXADD\r\n$", 13)
            put_integer(&out, PyBytes_GET_SIZE(stream))
            put(&out, b"\r\n", 2)
            put(&out, PyBytes_AS_STRING(stream), PyBytes_GET_SIZE(stream))
            put(&out, b"\r\n$1\r\n*\r\n", 9)
            for k in range(2 * pairs):
                put(&out, b"$", 1)
                put_integer(&out, spans[2 * k + 1])
                put(&out, b"\r\n", 2)
                put(&out, s + spans[2 * k], spans[2 * k + 1])
                put(&out, b"\r\n", 2)
        return PyBytes_FromStringAndSize(out.data, out.size)
    finally:
        PyMem_Free(out.data)


def command(name: bytes, args: list) -> bytes:
    """``name args...`` as one command of the Redis protocol (each argument bytes, a str or an
    int)."""
    return b"*%d\r\n$%d\r\n%s\r\n" % (len(args) + 1, len(name), name) + bulk_strings(args)
