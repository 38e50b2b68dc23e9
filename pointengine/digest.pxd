# The compiled interface of pointengine.digest, for the lane (pointengine/lane.pyx).
from libc.stdint cimport int64_t

from pointengine.memo cimport Symbols

cdef enum:
    MOVED = -2  # Digest.residence of a person with several residences (read from the person)


cdef class Digest:
    cdef object person
    cdef str person_id  # the store's key of person (set by the lane)
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
    # (ClaimPlan, own key, group key or None), so that a claim needs no new string: the
    # national premiums, and a municipal one where the person lives and where they shop.
    cdef object plan_a, own_a, group_a, plan_b, own_b, group_b, plan_c, own_c, group_c
    cdef object plan_d, own_d, group_d
    # Of the same four, in the same order (0 is a): the slots of the own and group keys in
    # the embedded store's Counters (-1: not looked up yet), and whether the person is known
    # to be a member of the plan's program (a member stays one).
    cdef Py_ssize_t[4] own_slot
    cdef Py_ssize_t[4] group_slot
    cdef bint[4] member

    cdef int use(self, object plan, str own_prefix, object group_prefix,
                 str person) except -1
    cdef int build(self, Symbols table, dict bases, object person) except -1
    cdef int inherit(self, Digest older) except -1
    cdef void _swap(self, int k) noexcept


cdef object new_person(str person_id)
cdef object copied(object person)
cdef object new_enrolment(str provider, object applied_at, object card_applied_on,
                          int applied_day, int card_day)
cdef str interned(str text)
