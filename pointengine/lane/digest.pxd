# The compiled interface of pointengine.lane.digest, for the lane (pointengine/lane/lane.pyx).
from libc.stdint cimport int64_t

from pointengine.lane.memo cimport Symbols

cdef enum:
    MOVED = -2  # Digest.residence of a person with several residences (read from the person)


cdef class Digest:
    cdef object person
    cdef str person_id  # the store's key of person (set_id)
    cdef char[24] id_head  # its first bytes, so that the lane finds it without the string
    cdef Py_ssize_t id_size
    cdef int64_t[3] applied_us    # by phase: when the person applied; _NEVER if not
    cdef int64_t[3] chosen
    cdef int64_t[3] basis
    cdef int64_t[3] applied_day
    cdef int64_t[3] card_day
    cdef int64_t residence        # symbols; -1 none, _MOVED: read from the person
    cdef int64_t residence_pref
    cdef int birth_year           # -1: not known
    cdef int birth_day            # month * 100 + day
    cdef bint phase1, registered
    cdef int64_t health_us, account_us  # _NEVER: not registered
    # The person's cap keys of the last four claim plans that paid or clipped them
    # (ClaimPlan, and the award's caps: the own key, the group key if the plan has one, then
    # the plan's shared keys), so that a claim needs no new string and its awards share one
    # tuple: the national premiums, and a municipal one where the person lives and shops.
    cdef object plan_a, caps_a, plan_b, caps_b, plan_c, caps_c, plan_d, caps_d
    # Of the same four, in the same order (0 is a): the slots of the own and group keys in
    # the embedded store's Counters (-1: not looked up yet), and whether the person is known
    # to be a member of the plan's program (a member stays one).
    cdef Py_ssize_t[4] own_slot
    cdef Py_ssize_t[4] group_slot
    cdef bint[4] member
    # The interned payer (``person|provider``) of the person's last transaction that earned
    # points, and the provider's symbol (-1: none yet): a person mostly pays with one.
    cdef int64_t payer_provider
    cdef object payer
    # The lane's epoch in which ``person`` was last seen to be the Person the store holds.
    cdef int64_t epoch

    cdef int use(self, object plan, str own_prefix, object group_prefix, tuple shared_keys,
                 str person) except -1
    cdef int set_id(self, str person_id) except -1
    cdef bint has_id(self, const char* text, Py_ssize_t size) noexcept
    cdef int build(self, Symbols table, dict bases, object person) except -1
    cdef int inherit(self, Digest older) except -1
    cdef void _swap(self, int k) noexcept


cdef object new_person(str person_id)
cdef object copied(object person)
cdef object new_enrolment(str provider, object applied_at, object card_applied_on,
                          int applied_day, int card_day)
cdef str interned(str text)
