# The compiled interface of pointengine.lane.memo, for the lane (pointengine/lane/lane.pyx).
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t

cdef enum:
    S_TYPE = 0
    S_DAY
    S_PROVIDER
    S_CHOSEN1
    S_CHOSEN2
    S_BASIS1
    S_BASIS2
    S_APPLIED1
    S_APPLIED2
    S_CARD
    S_PHASE1
    S_RESIDENCE
    S_RESIDENCE_PREF
    S_STORE
    S_STORE_PLACE
    S_STORE_PREF
    S_AGE
    S_HEALTH
    S_ACCOUNT
    S_ACTIVITY
    S_PLACE
    S_PROGRAM
    N_SLOTS


cdef enum:
    KEY_WIDTH = 64      # the widest memo key a Plan classes (wider: the Python path)
    MAX_CHECKS = 32     # the most checks whose outcomes a Plan remembers (more: asks)


cdef class Symbols:
    cdef dict numbers
    cdef public list names
    cdef bint[N_SLOTS] is_text
    cdef int64_t[N_SLOTS] blank
    cdef dict places

    cdef int64_t symbol(self, str text) except -1
    cdef int64_t constant(self, int slot, object value) except? -1
    cdef object value(self, int slot, int64_t held)
    cdef int residence(self, str code, int64_t* place, int64_t* pref) except -1


cdef class VectorMemo:
    cdef int64_t* keys
    cdef int32_t* values
    cdef char* used
    cdef Py_ssize_t width, mask, count, limit

    cdef int _allocate(self, Py_ssize_t size) except -1
    cdef Py_ssize_t _slot(self, const int64_t* key) noexcept
    cdef bint get(self, const int64_t* key, int32_t* value) noexcept
    cdef int put(self, const int64_t* key, int32_t value) except -1
    cdef int _insert(self, const int64_t* key, int32_t value) except -1
    cdef int clear(self) except -1
    cdef int _grow(self) except -1


cdef class Plan:
    # The key's recipe in one block, with the plan and its memo (see _build_code): all that
    # decide reads but on a memo miss.
    cdef int64_t* code
    cdef VectorMemo memo
    cdef object ruleset
    cdef tuple checks
    cdef list read_names
    cdef public int n_read
    cdef int[N_SLOTS] read_slots
    cdef int n_equal, n_order, n_raw, n_members, n_groups, width
    cdef int[N_SLOTS] equal_slots
    cdef int[N_SLOTS] equal_counts
    cdef int64_t* equal_tables[N_SLOTS]
    cdef int[N_SLOTS] order_slots
    cdef int[N_SLOTS] order_counts
    cdef int64_t* order_tables[N_SLOTS]
    cdef int[N_SLOTS] raw_slots
    cdef int[N_SLOTS] member_slots
    cdef int[N_SLOTS] group_starts
    cdef int[N_SLOTS] group_sizes
    cdef public bint supported
    cdef public bint reads_store
    cdef bint always_passes
    cdef bint packed               # the key is one number (see build)
    cdef object shape
    # each check's outcomes (see build): check k reads the key's positions
    # part_positions[part_starts[k]:part_starts[k + 1]]; n_parts is 0 when not remembered
    cdef int n_parts
    cdef int[MAX_CHECKS + 1] part_starts
    cdef int* part_positions
    cdef tuple outcome_keys
    cdef list outcomes             # VectorMemo per check, shared by its outcome key
    cdef PyObject* outcome_memos[MAX_CHECKS]  # the same (held by outcomes)

    cdef int build(self, Symbols symbols, object ruleset) except -1
    cdef int _build_code(self) except -1
    cdef int _build_parts(self, object ruleset, Symbols symbols) except -1
    cdef int release(self) except -1
    cdef int _answer(self, Symbols symbols, const int64_t* fact, const int64_t* key,
                     const int64_t* whole) except -2
    cdef int _from_outcomes(self, const int64_t* key) noexcept
    cdef int _learn(self, const int64_t* key, int answer) except -1
    cdef int _ask(self, Symbols symbols, const int64_t* fact) except -2


cdef int decide(const int64_t* code, Symbols symbols, const int64_t* fact) except -2
