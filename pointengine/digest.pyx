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
from libc.stdint cimport int64_t

from pointengine.memo cimport Symbols
from pointengine.scan cimport datetime_epoch_us

from pointengine.errors import IntegrityError
from pointengine.persons import Enrolment, Person


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


    cdef int use(self, object plan, str own_prefix, object group_prefix,
                 str person) except -1:
        """Make ``own_a`` and ``group_a`` the interned cap keys of ``plan`` for this person:
        the prefixes (``group_prefix`` None: no group cap) followed by the person's id.
        ``own_slot[0]``, ``group_slot[0]`` and ``member[0]`` go with them."""
        cdef int k
        if self.plan_a is plan:
            return 0
        if self.plan_b is plan:
            self.plan_a, self.plan_b = self.plan_b, self.plan_a
            self.own_a, self.own_b = self.own_b, self.own_a
            self.group_a, self.group_b = self.group_b, self.group_a
            self._swap(1)
            return 0
        if self.plan_c is plan:
            self.plan_a, self.plan_c = self.plan_c, self.plan_a
            self.own_a, self.own_c = self.own_c, self.own_a
            self.group_a, self.group_c = self.group_c, self.group_a
            self._swap(2)
            return 0
        if self.plan_d is plan:
            self.plan_a, self.plan_d = self.plan_d, self.plan_a
            self.own_a, self.own_d = self.own_d, self.own_a
            self.group_a, self.group_d = self.group_d, self.group_a
            self._swap(3)
            return 0
        self.plan_d, self.own_d, self.group_d = self.plan_c, self.own_c, self.group_c
        self.plan_c, self.own_c, self.group_c = self.plan_b, self.own_b, self.group_b
        self.plan_b, self.own_b, self.group_b = self.plan_a, self.own_a, self.group_a
        for k in range(3, 0, -1):
            self.own_slot[k] = self.own_slot[k - 1]
            self.group_slot[k] = self.group_slot[k - 1]
            self.member[k] = self.member[k - 1]
        self.plan_a = plan
        self.own_a = interned(own_prefix + person)
        self.group_a = None if group_prefix is None else interned(group_prefix + person)
        self.own_slot[0] = self.group_slot[0] = -1
        self.member[0] = False
        return 0

    cdef int inherit(self, Digest older) except -1:
        """Take ``older``'s cap keys, slots and memberships: a digest of the same person
        (they depend on the id alone, and a member stays one)."""
        cdef int k
        self.plan_a, self.own_a, self.group_a = older.plan_a, older.own_a, older.group_a
        self.plan_b, self.own_b, self.group_b = older.plan_b, older.own_b, older.group_b
        self.plan_c, self.own_c, self.group_c = older.plan_c, older.own_c, older.group_c
        self.plan_d, self.own_d, self.group_d = older.plan_d, older.own_d, older.group_d
        for k in range(4):
            self.own_slot[k] = older.own_slot[k]
            self.group_slot[k] = older.group_slot[k]
            self.member[k] = older.member[k]
        return 0

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
    raise IntegrityError("pointengine.digest: Person or Enrolment changed; update it")


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
