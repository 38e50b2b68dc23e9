# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Reading the commonest event lines, and their timestamps, without Python objects.

The fast lane (:mod:`pointengine.lane.lane`) reads nearly every line of a replay. This module finds
the fields of such a line in its bytes, checks them, and reads its timestamp into integers; it
creates no Python object. It accepts a *subset* of what :func:`pointengine.model.events.parse_event`
accepts and reads it the same way; anything else is left to the Python path, which also
produces the exact error. What is accepted:

- one flat JSON object of known keys, each once, with optional spaces or tabs between tokens;
- strings of printable ASCII without a backslash (no escapes); integers without a fraction or
  exponent; ``true``, ``false`` and ``null``; arrays of such strings; nothing else;
- the keys, types and ranges of :class:`~pointengine.model.events.Purchase`,
  :class:`~pointengine.model.events.Charge`, :class:`~pointengine.model.events.Refund`,
  :class:`~pointengine.model.events.MynapointApplication` and the two registrations;
- ids of the form :data:`pointengine.model.events.ID`; a MyKey ID that could be a My Number in any
  form is left to the Python path, which refuses a real one;
- timestamps ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±hh:mm)`` of the years 1900-2999 with offsets
  below 24 hours, exactly as :func:`pointengine.model.events.timestamp` reads them.

Days and instants: an instant is microseconds since the Unix epoch; days are counted with the
proleptic Gregorian calendar of :mod:`datetime` (Howard Hinnant's ``days_from_civil``).
"""

from cpython.datetime cimport (
    datetime_new,
    datetime_day,
    datetime_hour,
    datetime_microsecond,
    datetime_minute,
    datetime_month,
    datetime_second,
    datetime_tzinfo,
    datetime_year,
    date_day,
    date_month,
    date_year,
    import_datetime,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t
from libc.string cimport memchr, memcmp, memcpy

from pointengine.model.jst import JST

import_datetime()

cdef int64_t _US = 1000000
cdef int64_t _DAY_US = 86400 * _US
cdef int64_t _JST_US = 9 * 3600 * _US
cdef int64_t _MAX_YEN = 100000000
cdef object _JST = JST

# Key names by field (the order of the F_* constants).
cdef const char* _KEYS[17]
_KEYS[:] = [b"source", b"id", b"person", b"at", b"type", b"provider", b"amount", b"store",
            b"store_municipality", b"transaction", b"phase", b"card_applied_on", b"residence",
            b"birth_date", b"children_birth_dates", b"household", b"applied_in_phase1"]
cdef Py_ssize_t[17] _KEY_SIZES = [6, 2, 6, 2, 4, 8, 6, 5, 18, 11, 5, 15, 9, 10, 20, 9, 17]


# Byte classes, one lookup a byte: a string's plain bytes (printable ASCII but '"' and '\\'),
# an id's first byte (letters and digits) and its others (also '.', '_', ':', '-').
cdef bint[256] _PLAIN
cdef bint[256] _ID_FIRST
cdef bint[256] _ID_REST
for _c in range(256):
    _PLAIN[_c] = 32 <= _c <= 126 and _c != 34 and _c != 92
    _ID_FIRST[_c] = 48 <= _c <= 57 or 65 <= _c <= 90 or 97 <= _c <= 122
    _ID_REST[_c] = _ID_FIRST[_c] or _c in (46, 95, 58, 45)


for _k in range(N_FIELDS):
    if _field_of(<const unsigned char*>_KEYS[_k], _KEY_SIZES[_k]) != _k:
        raise ImportError(f"pointengine.model.scan: key {_k} is not found by its length")


cdef inline bint _space(unsigned char c) noexcept:
    return c == 32 or c == 9


cdef inline Py_ssize_t _skip(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """The first index from ``i`` that is not a space or a tab."""
    while i < n and _space(s[i]):
        i += 1
    return i


cdef inline bint _digit(unsigned char c) noexcept:
    return 48 <= c <= 57


cdef bint is_blank(const unsigned char* s, Py_ssize_t n) noexcept:
    """True when the line holds only ASCII whitespace (``bytes.strip`` leaves nothing)."""
    cdef Py_ssize_t i
    for i in range(n):
        if not (s[i] == 32 or 9 <= s[i] <= 13):
            return False
    return True


cdef inline int _is(const unsigned char* s, Py_ssize_t n, int k) noexcept:
    return k if memcmp(s, _KEYS[k], n) == 0 else -1


cdef inline int _field_of(const unsigned char* s, Py_ssize_t n) noexcept:
    """The field a key names (by its length, then its first letter), or -1."""
    if n == 2:
        return _is(s, 2, F_ID) if s[0] == b'i' else _is(s, 2, F_AT)
    if n == 4:
        return _is(s, 4, F_TYPE)
    if n == 5:
        return _is(s, 5, F_STORE) if s[0] == b's' else _is(s, 5, F_PHASE)
    if n == 6:
        if s[0] == b's':
            return _is(s, 6, F_SOURCE)
        return _is(s, 6, F_PERSON) if s[0] == b'p' else _is(s, 6, F_AMOUNT)
    if n == 8:
        return _is(s, 8, F_PROVIDER)
    if n == 9:
        return _is(s, 9, F_RESIDENCE) if s[0] == b'r' else _is(s, 9, F_HOUSEHOLD)
    if n == 10:
        return _is(s, 10, F_BIRTH)
    if n == 11:
        return _is(s, 11, F_TRANSACTION)
    if n == 15:
        return _is(s, 15, F_CARD)
    if n == 17:
        return _is(s, 17, F_PHASE1)
    if n == 18:
        return _is(s, 18, F_WHERE)
    if n == 20:
        return _is(s, 20, F_CHILDREN)
    return -1


cdef bint scan_object(const unsigned char* s, Py_ssize_t n, Line* line) noexcept:
    """Find the fields of ``s``; False when it is not a flat object of known keys, each once,
    with values as the module says (the Python path then reads it)."""
    cdef Py_ssize_t i = 0, start, digits
    cdef int k
    cdef int64_t number
    cdef bint negative
    cdef const unsigned char* end
    for k in range(N_FIELDS):
        line.fields[k].kind = V_ABSENT
    i = _skip(s, i, n)
    if i >= n or s[i] != b'{':
        return False
    i += 1
    while True:
        i = _skip(s, i, n)
        if i >= n or s[i] != b'"':
            return False
        i += 1
        start = i
        end = <const unsigned char*>memchr(s + i, 34, n - i)
        if end == NULL:
            return False
        i = end - s
        k = _field_of(s + start, i - start)  # a key with an escape is no known key
        if k < 0 or line.fields[k].kind != V_ABSENT:
            return False  # an unknown key, or one given twice
        i += 1
        i = _skip(s, i, n)
        if i >= n or s[i] != b':':
            return False
        i += 1
        i = _skip(s, i, n)
        if i >= n:
            return False
        if s[i] == b'"':
            # Up to the next quote: every string the lane reads is checked by its reader
            # (an id, a timestamp, a date, a code or a type: none allows a backslash, a
            # control character or anything not ASCII), so a string that is not plain
            # can only be declined there.
            i += 1
            start = i
            end = <const unsigned char*>memchr(s + i, 34, n - i)
            if end == NULL:
                return False
            i = end - s
            line.fields[k].kind = V_TEXT
            line.fields[k].start = start
            line.fields[k].size = i - start
            i += 1
        elif s[i] == b'-' or _digit(s[i]):
            negative = s[i] == b'-'
            if negative:
                i += 1
            start = i
            number = 0
            while i < n and _digit(s[i]) and i - start < 18:
                number = number * 10 + (s[i] - 48)
                i += 1
            digits = i - start
            if digits == 0 or (digits > 1 and s[start] == b'0'):
                return False
            if i < n and (_digit(s[i]) or s[i] == b'.' or s[i] == b'e' or s[i] == b'E'):
                return False  # too long, or not an integer
            line.fields[k].kind = V_NUMBER
            line.fields[k].number = -number if negative else number
        elif n - i >= 4 and memcmp(s + i, b"null", 4) == 0:
            line.fields[k].kind = V_NULL
            i += 4
        elif n - i >= 4 and memcmp(s + i, b"true", 4) == 0:
            line.fields[k].kind = V_TRUE
            i += 4
        elif n - i >= 5 and memcmp(s + i, b"false", 5) == 0:
            line.fields[k].kind = V_FALSE
            i += 5
        elif s[i] == b'[':
            i += 1
            start = i
            number = 0
            while True:
                i = _skip(s, i, n)
                if i < n and s[i] == b']' and number == 0:
                    break
                if i >= n or s[i] != b'"':
                    return False
                i += 1
                while i < n and _PLAIN[s[i]]:
                    i += 1
                if i >= n or s[i] != b'"':
                    return False
                i += 1
                number += 1
                i = _skip(s, i, n)
                if i < n and s[i] == b',':
                    i += 1
                    continue
                if i < n and s[i] == b']':
                    break
                return False
            line.fields[k].kind = V_ARRAY
            line.fields[k].start = start
            line.fields[k].size = i - start
            line.fields[k].number = number
            i += 1
        else:
            return False
        i = _skip(s, i, n)
        if i >= n:
            return False
        if s[i] == b',':
            i += 1
            continue
        if s[i] != b'}':
            return False
        i += 1
        break
    while i < n and (_space(s[i]) or s[i] == 10 or s[i] == 13):
        i += 1
    return i == n


cdef inline bint _plain(const unsigned char* s, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if not _PLAIN[s[i]]:
            return False
    return True


cdef inline bint _text_is(const unsigned char* s, Value* v, const char* word,
                          Py_ssize_t size) noexcept:
    return v.kind == V_TEXT and v.size == size and memcmp(s + v.start, word, size) == 0


cdef inline bint _id(const unsigned char* s, Value* v) noexcept:
    return v.kind == V_TEXT and valid_id(s + v.start, v.size)


cdef int event_kind(const unsigned char* s, Line* line) noexcept:
    """The type of a scanned line when it is a valid charge, purchase, refund, Mynapoint
    application or registration (every check of the model but timestamps, dates and
    municipality codes, which the caller makes); NOT_TAKEN otherwise."""
    cdef Value* f = line.fields
    cdef int kind, k
    if _text_is(s, &f[F_TYPE], b"purchase", 8):
        kind = PURCHASE
    elif _text_is(s, &f[F_TYPE], b"charge", 6):
        kind = CHARGE
    elif _text_is(s, &f[F_TYPE], b"refund", 6):
        kind = REFUND
    elif _text_is(s, &f[F_TYPE], b"mynapoint_application", 21):
        kind = APPLICATION
    elif _text_is(s, &f[F_TYPE], b"health_insurance_registration", 29):
        kind = HEALTH
    elif _text_is(s, &f[F_TYPE], b"public_funds_account_registration", 33):
        kind = ACCOUNT
    else:
        return NOT_TAKEN
    if not (_id(s, &f[F_SOURCE]) and _id(s, &f[F_ID]) and _id(s, &f[F_PERSON])
            and f[F_AT].kind == V_TEXT):
        return NOT_TAKEN
    if may_carry_my_number(s + f[F_PERSON].start, f[F_PERSON].size):
        return NOT_TAKEN
    if kind == HEALTH or kind == ACCOUNT:
        for k in range(N_FIELDS):
            if k > F_TYPE and f[k].kind != V_ABSENT:
                return NOT_TAKEN
        return kind
    if not _id(s, &f[F_PROVIDER]):
        return NOT_TAKEN
    if kind == APPLICATION:
        return kind if _application(s, f) else NOT_TAKEN
    for k in range(F_PHASE, N_FIELDS):
        if f[k].kind != V_ABSENT:
            return NOT_TAKEN
    if f[F_AMOUNT].kind != V_NUMBER or not 0 < f[F_AMOUNT].number <= _MAX_YEN:
        return NOT_TAKEN
    if kind == REFUND:
        if f[F_STORE].kind != V_ABSENT or f[F_WHERE].kind != V_ABSENT:
            return NOT_TAKEN
        return REFUND if _id(s, &f[F_TRANSACTION]) else NOT_TAKEN
    if f[F_TRANSACTION].kind != V_ABSENT:
        return NOT_TAKEN
    if kind == PURCHASE:
        if not (_id(s, &f[F_STORE]) and f[F_WHERE].kind == V_TEXT):
            return NOT_TAKEN
    else:
        if f[F_STORE].kind != V_ABSENT and f[F_STORE].kind != V_NULL and not _id(s, &f[F_STORE]):
            return NOT_TAKEN
        if f[F_WHERE].kind != V_ABSENT and f[F_WHERE].kind != V_NULL and f[F_WHERE].kind != V_TEXT:
            return NOT_TAKEN
    return kind


cdef bint _application(const unsigned char* s, Value* f) noexcept:
    """The fields of a Mynapoint application, but its dates and residence code."""
    cdef int k
    for k in (F_AMOUNT, F_STORE, F_WHERE, F_TRANSACTION):
        if f[k].kind != V_ABSENT:
            return False
    if f[F_PHASE].kind != V_NUMBER or not 1 <= f[F_PHASE].number <= 2:
        return False
    if f[F_CARD].kind != V_TEXT or f[F_RESIDENCE].kind != V_TEXT:
        return False
    if f[F_BIRTH].kind != V_ABSENT and f[F_BIRTH].kind != V_NULL and f[F_BIRTH].kind != V_TEXT:
        return False
    if f[F_CHILDREN].kind != V_ABSENT and f[F_CHILDREN].kind != V_ARRAY:
        return False
    if f[F_HOUSEHOLD].kind != V_ABSENT and f[F_HOUSEHOLD].kind != V_NULL \
            and not _id(s, &f[F_HOUSEHOLD]):
        return False
    if f[F_PHASE1].kind != V_ABSENT and f[F_PHASE1].kind != V_TRUE \
            and f[F_PHASE1].kind != V_FALSE:
        return False
    return True


cdef bint parse_day(const unsigned char* s, Py_ssize_t n, int* year, int* month,
                    int* day) noexcept:
    """A ``YYYY-MM-DD`` date of the years 1900-2999; False when the Python path must read it."""
    if n != 10 or s[4] != b'-' or s[7] != b'-':
        return False
    year[0] = _number(s, 4)
    month[0] = _number(s + 5, 2)
    day[0] = _number(s + 8, 2)
    if year[0] < 1900 or year[0] > 2999 or not 1 <= month[0] <= 12:
        return False
    return 1 <= day[0] <= _days_in_month(year[0], month[0])


cdef Py_ssize_t next_text(const unsigned char* s, Py_ssize_t i, Py_ssize_t end,
                          Py_ssize_t* start, Py_ssize_t* size) noexcept:
    """The next string of a scanned array's inside from ``i``: its span, and where to look for
    the one after; -1 when there is none."""
    while i < end and s[i] != b'"':
        i += 1
    if i >= end:
        return -1
    start[0] = i + 1
    i += 1
    while s[i] != b'"':
        i += 1
    size[0] = i - start[0]
    return i + 1


cdef bint valid_id(const unsigned char* s, Py_ssize_t n) noexcept:
    """``ID.fullmatch``: 1-64 of letters, digits, ``._:-``, starting with a letter or digit."""
    cdef Py_ssize_t i
    if n < 1 or n > 64 or not _ID_FIRST[s[0]]:
        return False
    for i in range(1, n):
        if not _ID_REST[s[i]]:
            return False
    return True


cdef inline int _number(const unsigned char* s, Py_ssize_t size) noexcept:
    """The value of ``size`` ASCII digits, or -1."""
    cdef int value = 0
    cdef Py_ssize_t i
    for i in range(size):
        if not _digit(s[i]):
            return -1
        value = value * 10 + (s[i] - 48)
    return value


cdef inline int _days_in_month(int year, int month) noexcept:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


cdef int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept:
    """Days from 1970-01-01 to the given proleptic Gregorian date."""
    y -= m <= 2
    cdef int64_t era = (y if y >= 0 else y - 399) // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef void jst_fields(int64_t epoch_us, Moment* m) noexcept:
    """Fill the JST date and time of ``epoch_us`` into ``m`` (and ``m.epoch_us``)."""
    cdef int64_t local = epoch_us + _JST_US
    cdef int64_t days = local // _DAY_US  # C division truncates: floor it
    if local - days * _DAY_US < 0:
        days -= 1
    cdef int64_t rest = local - days * _DAY_US
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    m.epoch_us = epoch_us
    m.day = <int>(doy - (153 * mp + 2) // 5 + 1)
    m.month = <int>(mp + 3 if mp < 10 else mp - 9)
    m.year = <int>(yoe + era * 400 + (m.month <= 2))
    m.micro = <int>(rest % _US)
    rest //= _US
    m.second = <int>(rest % 60)
    m.minute = <int>((rest // 60) % 60)
    m.hour = <int>(rest // 3600)


cdef bint parse_moment(const unsigned char* s, Py_ssize_t n, Moment* m) noexcept:
    """Read an RFC 3339 timestamp (see the module); False when the Python path must."""
    cdef int year, month, day, hour, minute, second, micro = 0, oh, om
    cdef Py_ssize_t i = 19, digits
    cdef int64_t offset
    if n < 20 or s[4] != b'-' or s[7] != b'-' or s[10] != b'T' or s[13] != b':' \
            or s[16] != b':':
        return False
    year = _number(s, 4)
    month = _number(s + 5, 2)
    day = _number(s + 8, 2)
    hour = _number(s + 11, 2)
    minute = _number(s + 14, 2)
    second = _number(s + 17, 2)
    if year < 1900 or year > 2999 or not 1 <= month <= 12 or hour < 0 or hour > 23 \
            or minute < 0 or minute > 59 or second < 0 or second > 59:
        return False
    if day < 1 or day > _days_in_month(year, month):
        return False
    if s[i] == b'.':
        i += 1
        digits = 0
        while i < n and _digit(s[i]) and digits < 7:
            micro = micro * 10 + (s[i] - 48)
            i += 1
            digits += 1
        if digits < 1 or digits > 6:
            return False
        while digits < 6:
            micro *= 10
            digits += 1
    if n - i == 1 and s[i] == b'Z':
        offset = 0
    elif n - i == 6 and (s[i] == b'+' or s[i] == b'-') and s[i + 3] == b':':
        oh = _number(s + i + 1, 2)
        om = _number(s + i + 4, 2)
        if oh < 0 or oh > 23 or om < 0 or om > 59:
            return False
        if s[i] == b'-' and oh == 0 and om == 0:
            return False  # -00:00: "offset unknown", which events may not say
        offset = (oh * 3600 + om * 60) * _US
        if s[i] == b'-':
            offset = -offset
    else:
        return False
    jst_fields((days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60
                + second) * _US + micro - offset, m)
    return True


cdef inline Py_ssize_t _put(char* out, int value, int width) noexcept:
    cdef int i
    for i in range(width - 1, -1, -1):
        out[i] = <char>(48 + value % 10)
        value //= 10
    return width


cdef Py_ssize_t format_jst(const Moment* m, char* out) noexcept:
    """``datetime.isoformat()`` of the instant in JST (``…+09:00``, microseconds when not 0);
    ``out`` holds at least 32 bytes. Returns the length."""
    cdef Py_ssize_t i = 0
    i += _put(out + i, m.year, 4)
    out[i] = b'-'
    i += 1
    i += _put(out + i, m.month, 2)
    out[i] = b'-'
    i += 1
    i += _put(out + i, m.day, 2)
    out[i] = b'T'
    i += 1
    i += _put(out + i, m.hour, 2)
    out[i] = b':'
    i += 1
    i += _put(out + i, m.minute, 2)
    out[i] = b':'
    i += 1
    i += _put(out + i, m.second, 2)
    if m.micro:
        out[i] = b'.'
        i += 1
        i += _put(out + i, m.micro, 6)
    memcpy(out + i, b"+09:00", 6)
    return i + 6


cdef int64_t datetime_epoch_us(object value) except? -1:
    """An aware datetime as microseconds since the epoch (the engine's timestamps are in
    JST, read without a call)."""
    cdef int64_t local = ((days_from_civil(datetime_year(value), datetime_month(value),
                                           datetime_day(value)) * 86400
                           + datetime_hour(value) * 3600 + datetime_minute(value) * 60
                           + datetime_second(value)) * _US + datetime_microsecond(value))
    if datetime_tzinfo(value) is _JST:
        return local - _JST_US
    offset = value.utcoffset()
    return local - ((offset.days * 86400 + offset.seconds) * _US + offset.microseconds)


cdef int date_number(object value) noexcept:
    """A date as ``YYYYMMDD``."""
    return date_year(value) * 10000 + date_month(value) * 100 + date_day(value)


# Python entry points: the Python path's reading of transactions, and readings for tests that
# compare them with the models'.

_FIELD_NAMES = ("source", "id", "person", "at", "type", "provider", "amount", "store",
                "store_municipality", "transaction")
_TYPE_NAMES = {PURCHASE: "purchase", CHARGE: "charge", REFUND: "refund"}


def scan_transaction(bytes raw) -> dict | None:
    """The fields of a charge, purchase or refund line that the scanner takes, as the model
    reads them (``at`` an aware datetime in JST; a field the line does not give is left out),
    or None for any other line. Municipality codes are not checked here: the caller knows
    them."""
    cdef Line line
    cdef const unsigned char* s = <const unsigned char*>raw
    cdef Moment m
    cdef Value* v
    cdef int k
    if not scan_object(s, len(raw), &line):
        return None
    kind = event_kind(s, &line)
    if kind != PURCHASE and kind != CHARGE and kind != REFUND:
        return None
    v = &line.fields[F_AT]
    if not parse_moment(s + v.start, v.size, &m):
        return None
    values = {}
    for k in range(F_TRANSACTION + 1):
        v = &line.fields[k]
        if v.kind == V_ABSENT:
            continue
        if k == F_AT:
            value = datetime_new(m.year, m.month, m.day, m.hour, m.minute, m.second, m.micro,
                                 _JST)
        elif v.kind == V_TEXT:
            # ids are checked by event_kind, a municipality code not: text that is not plain
            # (an escape, anything not ASCII) is left to the model
            if not _plain(s + v.start, v.size):
                return None
            value = PyUnicode_DecodeASCII(<const char*>s + v.start, v.size, NULL)
        elif v.kind == V_NUMBER:
            value = v.number
        elif v.kind == V_NULL:
            value = None
        else:
            return None
        values[_FIELD_NAMES[k]] = value
    values["type"] = _TYPE_NAMES[kind]
    return values



def scanned_kind(bytes raw) -> int:
    """0 when the lane leaves ``raw`` to the Python path, else 1 purchase, 2 charge,
    3 refund, 4 application, 5 health-insurance and 6 public-funds-account registration
    (timestamps are checked here, dates and municipality codes are not)."""
    cdef Line line
    cdef const unsigned char* s = <const unsigned char*>raw
    cdef Moment m
    if not scan_object(s, len(raw), &line):
        return 0
    kind = event_kind(s, &line)
    if kind == NOT_TAKEN:
        return 0
    at = line.fields[F_AT]
    if not parse_moment(s + at.start, at.size, &m):
        return 0
    return kind


def moment(str text) -> tuple[int, str] | None:
    """``(epoch microseconds, JST isoformat)`` of ``text``, or None when the lane declines it."""
    cdef bytes raw = text.encode()
    cdef Moment m
    cdef char[32] out
    if not parse_moment(<const unsigned char*>raw, len(raw), &m):
        return None
    return m.epoch_us, out[:format_jst(&m, out)].decode()


def epoch_us(value: object) -> int:
    """:func:`datetime_epoch_us` for tests."""
    return datetime_epoch_us(value)


# --- the My Number guard's prefilter -----------------------------------------------------------

cdef unsigned char[256] _GUARD  # 0 another byte, 1 a separator between groups of digits,
for _c in range(256):            # 2 a digit, 3 non-ASCII or a backslash
    _GUARD[_c] = (2 if 48 <= _c <= 57 else 3 if _c >= 0x80 or _c == 92
                  else 1 if _c in b"\t -.:_/" else 0)


cdef bint may_carry_my_number(const unsigned char* s, Py_ssize_t n) noexcept:
    """False only when :func:`pointengine.model.privacy.carries_my_number` is sure to be False: the
    line is ASCII without a backslash and holds no 12 digits joined by runs of at most three
    separators (the guard's own test, without its check of one separator throughout)."""
    cdef Py_ssize_t i = 0, digits, gap
    cdef unsigned char kind
    while i < n:
        kind = _GUARD[s[i]]
        if kind <= 1:  # most bytes; a separator matters only after a digit
            i += 1
            continue
        if kind == 3:
            return True
        digits = gap = 0  # digits and separators from here
        while i < n:
            kind = _GUARD[s[i]]
            if kind == 2:
                digits = digits + 1 if gap <= 3 else 1
                if digits >= 12:
                    return True
                gap = 0
            elif kind == 1:
                gap += 1
            else:
                break
            i += 1
    return False


def suspects(list raws) -> list:
    """The indices of the lines of ``raws`` (bytes) that may carry a My Number, in order; the
    guard decides for those only (every other line is sure not to)."""
    cdef Py_ssize_t k
    cdef object raw
    out = []
    for k in range(len(raws)):
        raw = raws[k]
        if may_carry_my_number(<const unsigned char*>PyBytes_AS_STRING(raw),
                               PyBytes_GET_SIZE(raw)):
            out.append(k)
    return out


# --- how deeply a JSON text nests ----------------------------------------------------------------

def nested_deeper_than(bytes raw, Py_ssize_t limit) -> bool:
    """Whether the arrays and objects of the JSON text ``raw`` nest more than ``limit`` deep
    (brackets inside strings do not count; text that is not JSON is measured all the same).
    Linear and without recursion, so it is asked before any parser."""
    cdef const unsigned char* s = <const unsigned char*>raw
    cdef Py_ssize_t i = 0, n = len(raw), depth = 0
    cdef unsigned char c
    while i < n:
        c = s[i]
        if c == b'"':
            i += 1
            while i < n and s[i] != b'"':
                i += 2 if s[i] == b'\\' else 1
        elif c == b'[' or c == b'{':
            depth += 1
            if depth > limit:
                return True
        elif (c == b']' or c == b'}') and depth > 0:
            depth -= 1
        i += 1
    return False


def longest(list raws) -> int:
    """The length of the longest bytes of ``raws`` (0 for none): how a block of lines is
    checked for one over the bound without a Python call per line."""
    cdef Py_ssize_t k, size, most = 0
    for k in range(len(raws)):
        size = PyBytes_GET_SIZE(raws[k])
        if size > most:
            most = size
    return most
