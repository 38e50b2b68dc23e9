# The compiled interface of pointengine.store.apply: the embedded store's tables and the one
# apply step on them, called by the embedded store for the Python path's intents and by the
# fast lane (pointengine/lane/lane.pyx) for what it decides.
from libc.stdint cimport int64_t

from pointengine.store.compact cimport Counters, KeyTable
from pointengine.store.records cimport Transaction
from pointengine.store.wire cimport Buffer


cdef enum:
    MAX_CAPS = 32   # caps, or admissions, of one claim
    APPLIED = 0     # what refund() answers
    UNKNOWN = 1
    EXCEEDS = 2


cdef inline bint as_is(str text):
    """A text that JSON writes as it is: printable ASCII but ``"`` and ``\\``."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


cdef class Tables:
    cdef public dict _persons
    cdef public KeyTable _applied
    cdef public Counters _counters
    cdef public set _members
    cdef public dict _transactions  # those that earned points
    cdef public KeyTable _paid      # the others: amount << PAID_SHIFT | refunded
    cdef public dict _totals
    cdef public dict _tallies
    cdef public int64_t _seq
    cdef public object sink
    cdef public object journal
    cdef public object person_watch
    cdef Buffer ledger              # ledger lines not yet given to the sink

    cdef int64_t used(self, Py_ssize_t slot) noexcept
    cdef int bump(self, Py_ssize_t slot, int64_t amount) except -1
    cdef int full_admission(self, Py_ssize_t* slots, int64_t* limits, int n) noexcept
    cdef int admit(self, str member, Py_ssize_t* slots, int n) except -1
    cdef int64_t clip(self, int64_t points, Py_ssize_t* slots, int64_t* limits, int n,
                      int* which) noexcept
    cdef int count(self, Py_ssize_t* slots, int n, int64_t points, tuple total) except -1
    cdef int refund(self, str transaction, str payer, int64_t paid_fp, int64_t amount,
                    list reversals, int64_t* left, int64_t* whole) except -1
    cdef Transaction keep(self, str transaction, int64_t amount, tuple awards, str payer)
    cdef int keep_plain(self, int64_t paid_fp, int64_t amount, str transaction,
                        str payer) except -1
    cdef int keep_person(self, str person, object state, bint watched) except -1
    cdef int mark_applied(self, int64_t fp, str event) except -1
    cdef int line(self, bint award, const char* event, Py_ssize_t event_size,
                  const char* person, Py_ssize_t person_size, bytes program, int version,
                  int64_t points, bytes provider, const char* at, Py_ssize_t at_size,
                  const char* transaction, Py_ssize_t transaction_size) except -1
    cpdef int flush_ledger(self) except -1
    cdef object _apply(self, object intent)
    cdef int _slots(self, tuple counters, Py_ssize_t* slots, int64_t* limits) except -1
    cdef object _refund(self, object intent, object result)
    cdef int _line(self, bint award, object intent, str program, int version, int64_t points,
                   str provider, str transaction) except -1
