# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""What the lane reads of persons, and the persons it makes.

A :class:`Digest` holds, as integers, what every event's fact reads of a person (enrolments,
residence, birth date, registrations) and the person's interned cap keys of the claim plans
that paid them last; the lane makes one per Person object the store holds. Persons and
enrolments are made without their Python constructors, which cost more than the rest of an
application: the fields they set are checked against the classes when this module is
imported.
"""

import dataclasses

cimport cython
from cpython.datetime cimport date_day, date_month, date_year, import_datetime
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.unicode cimport PyUnicode_AsUTF8, PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy

from pointengine.lane.memo cimport Symbols
from pointengine.model.scan cimport datetime_epoch_us

from pointengine.errors import IntegrityError
from pointengine.model.persons import Enrolment, Person


cdef extern from "Python.h":
    void PyUnicode_InternInPlace(PyObject** text)
    int PyObject_GenericSetAttr(object target, object name, object value) except -1

import_datetime()

cdef int64_t _NEVER = 0x7FFFFFFFFFFFFFFF  # an instant after every event: not (yet) so


@cython.final
@cython.no_gc
cdef class Digest:
    """What the lane reads of a person for each event, as integers: made once per Person
    object the store holds (a change makes a new one), kept beside it by the lane."""


    def __cinit__(self) -> None:
        self.payer_provider = -1

    cdef int use(self, object plan, str own_prefix, object group_prefix, tuple shared_keys,
                 str person) except -1:
        """Make ``caps_a`` the caps of ``plan``'s awards to this person: the interned own key
        (``own_prefix`` and the person's id), the group key (``group_prefix`` None: no group
        cap), then ``shared_keys``. ``own_slot[0]``, ``group_slot[0]`` and ``member[0]`` go
        with them."""
        cdef int k
        if self.plan_a is plan:
            return 0
        if self.plan_b is plan:
            self.plan_a, self.plan_b = self.plan_b, self.plan_a
            self.caps_a, self.caps_b = self.caps_b, self.caps_a
            self._swap(1)
            return 0
        if self.plan_c is plan:
            self.plan_a, self.plan_c = self.plan_c, self.plan_a
            self.caps_a, self.caps_c = self.caps_c, self.caps_a
            self._swap(2)
            return 0
        if self.plan_d is plan:
            self.plan_a, self.plan_d = self.plan_d, self.plan_a
            self.caps_a, self.caps_d = self.caps_d, self.caps_a
            self._swap(3)
            return 0
        self.plan_d, self.caps_d = self.plan_c, self.caps_c
        self.plan_c, self.caps_c = self.plan_b, self.caps_b
        self.plan_b, self.caps_b = self.plan_a, self.caps_a
        for k in range(3, 0, -1):
            self.own_slot[k] = self.own_slot[k - 1]
            self.group_slot[k] = self.group_slot[k - 1]
            self.member[k] = self.member[k - 1]
        self.plan_a = plan
        own = interned(own_prefix + person)
        caps = (own,) if group_prefix is None else (own, interned(group_prefix + person))
        self.caps_a = caps + shared_keys if shared_keys else caps
        self.own_slot[0] = self.group_slot[0] = -1
        self.member[0] = False
        return 0

    cdef int inherit(self, Digest older) except -1:
        """Take ``older``'s cap keys, slots, memberships and payer: a digest of the same
        person (they depend on the id alone, and a member stays one)."""
        cdef int k
        self.plan_a, self.caps_a = older.plan_a, older.caps_a
        self.plan_b, self.caps_b = older.plan_b, older.caps_b
        self.plan_c, self.caps_c = older.plan_c, older.caps_c
        self.plan_d, self.caps_d = older.plan_d, older.caps_d
        for k in range(4):
            self.own_slot[k] = older.own_slot[k]
            self.group_slot[k] = older.group_slot[k]
            self.member[k] = older.member[k]
        self.payer_provider, self.payer = older.payer_provider, older.payer
        return 0

    cdef int set_id(self, str person_id) except -1:
        """Make ``person_id`` the store's key of this digest's person."""
        cdef const char* text = PyUnicode_AsUTF8AndSize(person_id, &self.id_size)
        memcpy(self.id_head, text, min(self.id_size, sizeof(self.id_head)))
        self.person_id = person_id
        return 0

    cdef bint has_id(self, const char* text, Py_ssize_t size) noexcept:
        """True when the person's id is the ``size`` bytes at ``text``."""
        cdef Py_ssize_t head = sizeof(self.id_head)
        if size != self.id_size:
            return False
        if size <= head:
            return memcmp(self.id_head, text, size) == 0
        return (memcmp(self.id_head, text, head) == 0
                and memcmp(PyUnicode_AsUTF8(self.person_id) + head, text + head,
                           size - head) == 0)

    cdef void _swap(self, int k) noexcept:
        """Swap the slots and membership of plan ``k`` with those of plan 0 (a)."""
        self.own_slot[0], self.own_slot[k] = self.own_slot[k], self.own_slot[0]
        self.group_slot[0], self.group_slot[k] = self.group_slot[k], self.group_slot[0]
        self.member[0], self.member[k] = self.member[k], self.member[0]

    cdef int build(self, Symbols table, dict bases, object person) except -1:
        """Read ``person``; ``bases`` maps a provider's id to the symbol of its basis."""
        cdef int phase
        self.person = person
        enrolments = person.enrolments
        for phase in range(1, 3):
            enrolment = enrolments.get(phase)
            if enrolment is None:
                self.applied_us[phase] = _NEVER
                continue
            self.applied_us[phase] = datetime_epoch_us(enrolment.applied_at)
            self.chosen[phase] = table.symbol(enrolment.provider)
            basis = bases.get(enrolment.provider)
            self.basis[phase] = 0 if basis is None else basis
            self.applied_day[phase] = enrolment.applied_day
            self.card_day[phase] = enrolment.card_day
        self.phase1 = bool(person.phase1_applicant or 1 in enrolments)
        residences = person.residences
        self.residence = self.residence_pref = -1
        if len(residences) > 1:
            self.residence = MOVED
        elif residences:
            table.residence(residences[0][1], &self.residence, &self.residence_pref)
        birth = person.birth_date
        self.birth_year = -1 if birth is None else date_year(birth)
        if birth is not None:
            self.birth_day = date_month(birth) * 100 + date_day(birth)
        registrations = person.registrations
        self.registered = bool(registrations)
        when = registrations.get("health_insurance")
        self.health_us = _NEVER if when is None else datetime_epoch_us(when)
        when = registrations.get("public_funds_account")
        self.account_us = _NEVER if when is None else datetime_epoch_us(when)
        return 0


_PERSON_FIELDS = ("id", "enrolments", "residences", "registrations", "birth_date", "children",
                  "household", "phase1_applicant")
_ENROLMENT_FIELDS = ("provider", "applied_at", "card_applied_on", "applied_day", "card_day")
if (tuple(f.name for f in dataclasses.fields(Person)) != _PERSON_FIELDS
        or tuple(f.name for f in dataclasses.fields(Enrolment)) != _ENROLMENT_FIELDS):
    raise IntegrityError("pointengine.lane.digest: Person or Enrolment changed; update it")


cdef object new_person(str person_id):
    """``Person(person_id)``."""
    person = Person.__new__(Person)
    person.id = person_id
    person.enrolments = {}
    person.residences = []
    person.registrations = {}
    person.birth_date = None
    person.children = ()
    person.household = None
    person.phase1_applicant = False
    return person


cdef object copied(object person):
    """``person.copy()``."""
    new = Person.__new__(Person)
    new.id = person.id
    new.enrolments = dict(person.enrolments)
    new.residences = list(person.residences)
    new.registrations = dict(person.registrations)
    new.birth_date = person.birth_date
    new.children = person.children
    new.household = person.household
    new.phase1_applicant = person.phase1_applicant
    return new


cdef object new_enrolment(str provider, object applied_at, object card_applied_on,
                           int applied_day, int card_day):
    """``Enrolment(provider, applied_at, card_applied_on)`` (frozen: set as its
    ``__post_init__`` does), with the two days it derives given."""
    enrolment = Enrolment.__new__(Enrolment)
    PyObject_GenericSetAttr(enrolment, "provider", provider)
    PyObject_GenericSetAttr(enrolment, "applied_at", applied_at)
    PyObject_GenericSetAttr(enrolment, "card_applied_on", card_applied_on)
    PyObject_GenericSetAttr(enrolment, "applied_day", applied_day)
    PyObject_GenericSetAttr(enrolment, "card_day", card_day)
    return enrolment


cdef str interned(str text):
    """``sys.intern(text)`` without the Python call."""
    cdef PyObject* raw = <PyObject*>text
    Py_INCREF(text)
    PyUnicode_InternInPlace(&raw)
    result = <str>raw
    Py_DECREF(<object>raw)
    return result
