# The compiled interface of pointengine.model.scan, for the fast lane (pointengine/lane/lane.pyx).
from libc.stdint cimport int64_t

cdef enum:
    F_SOURCE = 0
    F_ID
    F_PERSON
    F_AT
    F_TYPE
    F_PROVIDER
    F_AMOUNT
    F_STORE
    F_WHERE
    F_TRANSACTION
    F_PHASE
    F_CARD
    F_RESIDENCE
    F_BIRTH
    F_CHILDREN
    F_HOUSEHOLD
    F_PHASE1
    N_FIELDS

cdef enum:
    V_ABSENT = 0
    V_TEXT
    V_NUMBER
    V_NULL
    V_TRUE
    V_FALSE
    V_ARRAY  # of plain strings; start and size span its inside, number counts them

cdef enum:
    NOT_TAKEN = 0
    PURCHASE
    CHARGE
    REFUND
    APPLICATION
    HEALTH
    ACCOUNT

cdef struct Value:
    Py_ssize_t start
    Py_ssize_t size
    int kind
    int64_t number

cdef struct Line:
    Value fields[N_FIELDS]

cdef struct Moment:
    int64_t epoch_us  # microseconds since 1970-01-01T00:00:00Z
    int year          # the rest: the same instant in JST
    int month
    int day
    int hour
    int minute
    int second
    int micro

cdef bint scan_object(const unsigned char* s, Py_ssize_t n, Line* line) noexcept
cdef int event_kind(const unsigned char* s, Line* line) noexcept
cdef bint parse_day(const unsigned char* s, Py_ssize_t n, int* year, int* month,
                    int* day) noexcept
cdef Py_ssize_t next_text(const unsigned char* s, Py_ssize_t i, Py_ssize_t end,
                          Py_ssize_t* start, Py_ssize_t* size) noexcept
cdef bint valid_id(const unsigned char* s, Py_ssize_t n) noexcept
cdef bint may_carry_my_number(const unsigned char* s, Py_ssize_t n) noexcept
cdef bint parse_moment(const unsigned char* s, Py_ssize_t n, Moment* m) noexcept
cdef void jst_fields(int64_t epoch_us, Moment* m) noexcept
cdef Py_ssize_t format_jst(const Moment* m, char* out) noexcept
cdef int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept
cdef int64_t datetime_epoch_us(object value) except? -1
cdef int date_number(object value) noexcept
cdef bint is_blank(const unsigned char* s, Py_ssize_t n) noexcept
