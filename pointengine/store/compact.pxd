# The compiled interface of pointengine.store.compact, for the fast lane
# (pointengine/lane/lane.pyx).
from libc.stdint cimport int64_t


cdef int64_t fingerprint_bytes(const char* data, Py_ssize_t size) noexcept nogil
cdef int64_t fingerprint_str(str key) except? 0


cdef class KeyTable:
    cdef int64_t* _keys
    cdef int64_t* _values
    cdef bint _has_values
    cdef Py_ssize_t _mask
    cdef Py_ssize_t _count

    cdef int _allocate(self, Py_ssize_t size) except -1
    cdef Py_ssize_t _slot(self, int64_t fp) noexcept nogil
    cdef bint has_fp(self, int64_t fp) noexcept
    cdef void prefetch(self, int64_t fp) noexcept
    cdef bint get_fp(self, int64_t fp, int64_t* value) noexcept
    cdef int add_fp(self, int64_t fp, int64_t value) except -1
    cdef int _grow(self) except -1
    cdef int _fill(self, bytes keys, object values, Py_ssize_t count) except -1


cdef extern from *:
    """
    #define POINTENGINE_ABSENT INT64_MIN
    """
    const int64_t ABSENT "POINTENGINE_ABSENT"  # a Counters slot whose key is not set


cdef class Counters:
    cdef dict index      # key -> slot
    cdef list names      # slot -> key
    cdef int64_t* values
    cdef Py_ssize_t capacity

    cdef Py_ssize_t slot(self, str key) except -1
