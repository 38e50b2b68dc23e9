# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The embedded store's tables, and the one apply step on them.

Every rule of money that the store applies (:mod:`pointengine.store.contract`) is written here
once, on counters found by their slots:

- :meth:`Tables.full_admission` and :meth:`Tables.admit`: a person is admitted to a program
  (its budget in persons, a provider's allocation) unless an admission is full;
- :meth:`Tables.clip`: a claim gets ``min(points, room)``, the room being the least headroom
  over its caps, in their order (the person's cap first); the last cap that clipped names why;
- :meth:`Tables.count`: an award counts in every cap of its claim;
- :meth:`Tables.refund`: only the payer can refund, never more than is left of the
  transaction, and each award gives back ``floor(points * refunded_total / amount) -
  reversed_so_far``, freeing that much of every cap it counted in;
- :meth:`Tables.keep`, :meth:`Tables.keep_plain` and :meth:`Tables.mark_applied`: the
  transaction record kept for later refunds, and the event key kept against duplicates;
- :meth:`Tables.line`: the ledger line, numbered in order and given to the sink as the
  JSON line :meth:`LedgerEntry.to_json` writes (:meth:`Tables.flush_ledger`).

Two callers put them together: :meth:`Tables.apply_many`, the store contract's apply step for
the Python path's intents (the embedded store, :mod:`pointengine.store.memory`, is these
tables), and the compiled lane (:mod:`pointengine.lane.lane`), which decides its lines' claims
and then applies them with the same methods. Each records what it writes in the store's
journal when it has one (an exclusive replay's write-back, :mod:`pointengine.store.writeback`).
"""

import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.mem cimport PyMem_Free
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from cpython.long cimport PyLong_AsLongLong
from cpython.object cimport PyObject
from libc.stdint cimport int64_t

from pointengine.errors import IntegrityError
from pointengine.model.ledger import LedgerEntry
from pointengine.model.refusals import Refusal
from pointengine.store.contract import Applied, Outcome, refund_exceeds, unknown_transaction

from pointengine.store.compact cimport ABSENT, Counters, KeyTable, fingerprint_str
from pointengine.store.records cimport Award, Transaction, new_award, new_transaction
from pointengine.store.wire cimport Buffer, put, put_integer, reserve

PAID_SHIFT = 32
"""A transaction that earned nothing is kept as ``amount << PAID_SHIFT | refunded``."""
cdef int _SHIFT = PAID_SHIFT
cdef int64_t _MASK = (1 << PAID_SHIFT) - 1


def paid_key(str transaction, str payer) -> str:
    """The key of a transaction that earned nothing: its payer is part of it, as the compact
    table keeps no room to check it apart."""
    return f"{transaction}|{payer}" if payer else transaction


cdef class Tables:
    """Persons, event keys, counters, memberships, transactions, totals and tallies, and the
    apply step on them (see the module)."""

    def __cinit__(self, *args, **kwargs) -> None:
        self.ledger = Buffer(NULL, 0, 0)
        self._persons = {}
        self._applied = KeyTable(values=False)
        self._counters = Counters()
        self._members = set()
        self._transactions = {}
        self._paid = KeyTable()
        self._totals = {}
        self._tallies = {}
        self._seq = 0
        self.sink = None
        self.journal = None
        self.person_watch = None

    def __dealloc__(self) -> None:
        PyMem_Free(self.ledger.data)

    def __getstate__(self) -> dict:
        """What a checkpoint keeps: the tables and the sink, not the lane's watch (a new lane
        sets it again) nor a journal."""
        state = dict(getattr(self, "__dict__", {}))
        state.update(_persons=self._persons, _applied=self._applied, _counters=self._counters,
                     _members=self._members, _transactions=self._transactions,
                     _paid=self._paid, _totals=self._totals, _tallies=self._tallies,
                     _seq=self._seq, sink=self.sink)
        return state

    def __setstate__(self, dict state) -> None:
        for name in ("_persons", "_applied", "_counters", "_members", "_transactions", "_paid",
                     "_totals", "_tallies", "_seq", "sink"):
            setattr(self, name, state.pop(name))
        if state:
            self.__dict__.update(state)

    # -- reads -------------------------------------------------------------------------------

    def persons(self, ids: object) -> dict:
        """The stored persons among ``ids``."""
        found = self._persons
        return {i: found[i] for i in ids if i in found}

    def applied(self, events: object) -> set:
        """The event keys already applied."""
        return {e for e in events if e in self._applied}

    def counter(self, str key) -> int:
        """A counter's value."""
        return self._counters.get(key, 0)

    def totals(self) -> dict:
        """Net points per (program, provider)."""
        return dict(self._totals)

    def tallies(self, str prefix) -> dict:
        """Tallies under ``prefix``."""
        n = len(prefix)
        return {k[n:]: v for k, v in self._tallies.items() if k.startswith(prefix)}

    # -- the rules of money ------------------------------------------------------------------

    cdef inline int64_t used(self, Py_ssize_t slot) noexcept:
        """A counter's value by its slot (0 when it was never set)."""
        cdef int64_t value = self._counters.values[slot]
        return 0 if value == ABSENT else value

    cdef inline int bump(self, Py_ssize_t slot, int64_t amount) except -1:
        """Add ``amount`` to a counter."""
        cdef int64_t value = self._counters.values[slot]
        self._counters.values[slot] = (0 if value == ABSENT else value) + amount
        if self.journal is not None:
            self.journal.slots.append(slot)
        return 0

    cdef int full_admission(self, Py_ssize_t* slots, int64_t* limits, int n) noexcept:
        """The first of ``n`` admissions that is full (its count at its limit), or -1."""
        cdef int k
        for k in range(n):
            if self.used(slots[k]) >= limits[k]:
                return k
        return -1

    cdef int admit(self, str member, Py_ssize_t* slots, int n) except -1:
        """Admit a person (``member``, its member key) and count it in ``n`` admissions."""
        cdef int k
        self._members.add(member)
        if self.journal is not None:
            self.journal.members.append(member)
        for k in range(n):
            self.bump(slots[k], 1)
        return 0

    cdef int64_t clip(self, int64_t points, Py_ssize_t* slots, int64_t* limits, int n,
                      int* which) noexcept:
        """``points`` clipped to the least room over ``n`` caps, in order (never below 0);
        ``which`` is the last cap that clipped, or -1."""
        cdef int64_t room
        cdef int k
        which[0] = -1
        for k in range(n):
            room = limits[k] - self.used(slots[k])
            if room < points:
                points = room if room > 0 else 0
                which[0] = k
        return points

    cdef int count(self, Py_ssize_t* slots, int n, int64_t points, tuple total) except -1:
        """Count an award of ``points`` in each of ``n`` caps and in the totals of ``total``,
        its ``(program, provider)``."""
        cdef int k
        for k in range(n):
            self.bump(slots[k], points)
        _add(self._totals, total, points)
        return 0

    cdef int refund(self, str transaction, str payer, int64_t paid_fp, int64_t amount,
                    list reversals, int64_t* left, int64_t* whole) except -1:
        """Refund ``amount`` yen of ``transaction`` to ``payer`` (``person|provider``;
        ``paid_fp`` is the fingerprint of its :func:`paid_key`). Answers APPLIED, with
        ``(award, points given back)`` in ``reversals`` for each award that gives back points
        (caps freed, totals counted), or UNKNOWN (no such transaction of this payer) or
        EXCEEDS (``left`` of ``whole`` yen is less than asked), having changed nothing."""
        cdef PyObject* found = PyDict_GetItem(self._transactions, transaction)
        cdef Transaction tx
        cdef Award award
        cdef int64_t packed, refunded, share
        cdef Py_ssize_t k
        if found == NULL:
            if not self._paid.get_fp(paid_fp, &packed):
                return UNKNOWN
            whole[0] = packed >> _SHIFT
            refunded = packed & _MASK
            if refunded + amount > whole[0]:
                left[0] = whole[0] - refunded
                return EXCEEDS
            self._paid.add_fp(paid_fp, packed + amount)
            if self.journal is not None:
                self.journal.transactions += (transaction,
                                              f"{whole[0]}|{refunded + amount}|{payer}")
            return APPLIED
        tx = <Transaction>found
        if tx.payer != payer:
            return UNKNOWN
        whole[0] = tx.amount
        refunded = tx.refunded + amount
        if refunded > tx.amount:
            left[0] = tx.amount - tx.refunded
            return EXCEEDS
        tx.refunded = refunded
        if self.journal is not None:
            self.journal.kept.append(transaction)
        if tx.reversed is None:
            tx.reversed = [0] * len(tx.awards)
        back = tx.reversed
        for k in range(len(tx.awards)):
            award = <Award>tx.awards[k]
            # a 0-yen transaction can only be refunded 0 yen, which takes back nothing
            share = (award.points * refunded // tx.amount if tx.amount else 0) - back[k]
            if share <= 0:
                continue
            back[k] += share
            for key in award.caps:
                self.bump(self._counters.slot(key), -share)
            _add(self._totals, (award.program, award.provider), -share)
            reversals.append((award, share))
        return APPLIED

    cdef Transaction keep(self, str transaction, int64_t amount, tuple awards, str payer):
        """Keep a transaction that earned points (``awards``), for its refunds."""
        cdef Transaction tx = new_transaction(amount, awards, payer)
        self._transactions[transaction] = tx
        if self.journal is not None:
            self.journal.kept.append(transaction)
        return tx

    cdef int keep_plain(self, int64_t paid_fp, int64_t amount, str transaction,
                        str payer) except -1:
        """Keep a transaction that earned nothing, by the fingerprint of its
        :func:`paid_key`, in 16 bytes (``transaction`` and ``payer`` are read only by a
        journal)."""
        self._paid.add_fp(paid_fp, amount << _SHIFT)
        if self.journal is not None:
            self.journal.transactions += (transaction, f"{amount}|0|{payer}")
        return 0

    cdef int keep_person(self, str person, object state, bint watched) except -1:
        """Keep a person's new state; ``watched``: the lane, which keeps a digest of each
        person, is told (the lane itself passes False for the persons it changed)."""
        self._persons[person] = state
        if watched and self.person_watch is not None:
            self.person_watch.append(person)
        if self.journal is not None:
            self.journal.persons.append(person)
        return 0

    cdef int mark_applied(self, int64_t fp, str event) except -1:
        """The event (``fp``, its key's fingerprint) is applied: a repeat is a duplicate."""
        self._applied.add_fp(fp, 0)
        if self.journal is not None:
            self.journal.applied.append(event)
        return 0

    cdef int line(self, bint award, const char* event, Py_ssize_t event_size,
                     const char* person, Py_ssize_t person_size, bytes program, int version,
                     int64_t points, bytes provider, const char* at, Py_ssize_t at_size,
                     const char* transaction, Py_ssize_t transaction_size) except -1:
        """Append one ledger line as :meth:`LedgerEntry.to_json` writes it, its ``seq`` the
        next; every text must need no escape in JSON (ids do not; :meth:`_line` checks)."""
        reserve(&self.ledger, 256 + event_size + person_size + len(program) + len(provider)
                      + transaction_size)
        self._seq += 1
        put(&self.ledger, b'{"seq":', 7)
        put_integer(&self.ledger, self._seq)
        if award:
            put(&self.ledger, b',"kind":"award","event":"', 25)
        else:
            put(&self.ledger, b',"kind":"reversal","event":"', 28)
        put(&self.ledger, event, event_size)
        put(&self.ledger, b'","person":"', 12)
        put(&self.ledger, person, person_size)
        put(&self.ledger, b'","program":"', 13)
        put(&self.ledger, PyBytes_AS_STRING(program), PyBytes_GET_SIZE(program))
        put(&self.ledger, b'","version":', 12)
        put_integer(&self.ledger, version)
        put(&self.ledger, b',"points":', 10)
        put_integer(&self.ledger, points)
        put(&self.ledger, b',"provider":"', 13)
        put(&self.ledger, PyBytes_AS_STRING(provider), PyBytes_GET_SIZE(provider))
        put(&self.ledger, b'","at":"', 8)
        put(&self.ledger, at, at_size)
        if transaction == NULL:
            put(&self.ledger, b'","transaction":null}\n', 22)
        else:
            put(&self.ledger, b'","transaction":"', 17)
            put(&self.ledger, transaction, transaction_size)
            put(&self.ledger, b'"}\n', 3)
        return 0

    cpdef int flush_ledger(self) except -1:
        """Give the lines written since the last flush to the sink."""
        if self.ledger.size:
            data = PyBytes_FromStringAndSize(self.ledger.data, self.ledger.size)
            self.ledger.size = 0
            self.sink.append_lines(data)
        return 0

    # -- the Python path's intents -----------------------------------------------------------

    def apply_many(self, intents: object) -> list:
        """Apply each intent in order, atomically (the store contract)."""
        results = [self._apply(intent) for intent in intents]
        self.flush_ledger()
        return results

    cdef object _apply(self, object intent):
        cdef int64_t fp = fingerprint_str(intent.event)
        cdef Py_ssize_t[MAX_CAPS] caps
        cdef int64_t[MAX_CAPS] limits
        cdef Py_ssize_t[MAX_CAPS] admissions
        cdef int64_t[MAX_CAPS] admission_limits
        cdef int n_caps, n_admissions, which
        cdef int64_t points
        if self._applied.has_fp(fp):
            return Applied.refused(intent.event, Refusal.DUPLICATE)
        result = Applied(intent.event, "applied")
        if intent.refund_of is not None:
            refused = self._refund(intent, result)
            if refused is not None:
                return refused
        awards = []
        for claim in intent.claims:
            if claim.member_key and claim.member_key not in self._members:
                n_admissions = self._slots(claim.admissions, admissions, admission_limits)
                which = self.full_admission(admissions, admission_limits, n_admissions)
                if which >= 0:
                    result.outcomes.append(Outcome(claim.program, claim.version, claim.points,
                                                   0, claim.admissions[which].label))
                    continue
                if claim.points > 0:
                    self.admit(claim.member_key, admissions, n_admissions)
            n_caps = self._slots(claim.caps, caps, limits)
            points = self.clip(claim.points, caps, limits, n_caps, &which)
            result.outcomes.append(Outcome(claim.program, claim.version, claim.points, points,
                                           claim.caps[which].label if which >= 0 else None))
            if points <= 0:
                continue
            self.count(caps, n_caps, points, (claim.program, claim.provider))
            self._line(True, intent, claim.program, claim.version, points, claim.provider,
                       None)
            if claim.refundable:
                # cap keys are interned: millions of awards share a few per person
                awards.append(new_award(claim.program, claim.version, points, claim.provider,
                                        tuple([sys.intern(c.key) for c in claim.caps])))
        for key, amount in intent.tallies:
            self._tallies[key] = self._tallies.get(key, 0) + amount
        if intent.transaction is not None:
            if awards or not 0 <= intent.amount < 1 << 31:
                # a payer is shared by the person's transactions with the provider
                self.keep(intent.transaction, intent.amount, tuple(awards),
                          sys.intern(intent.payer))
            else:
                self.keep_plain(fingerprint_str(paid_key(intent.transaction, intent.payer)),
                                intent.amount, intent.transaction, intent.payer)
        if intent.person_state is not None:
            self.keep_person(intent.person, intent.person_state, True)
        if self.journal is not None:
            self.journal.tallies.extend([key for key, _ in intent.tallies])
        self.mark_applied(fp, intent.event)
        return result

    cdef int _slots(self, tuple counters, Py_ssize_t* slots, int64_t* limits) except -1:
        """The slots and limits of a claim's caps or admissions; their number."""
        cdef int n = len(counters), k
        if n > MAX_CAPS:
            raise IntegrityError(f"a claim of {n} caps or admissions: at most {MAX_CAPS}")
        for k in range(n):
            slots[k] = self._counters.slot(counters[k].key)
            limits[k] = counters[k].limit
        return n

    cdef object _refund(self, object intent, object result):
        cdef int64_t left = 0, whole = 0
        reversals = []
        answer = self.refund(intent.refund_of, intent.payer,
                             fingerprint_str(paid_key(intent.refund_of, intent.payer)),
                             intent.refund_amount, reversals, &left, &whole)
        if answer == UNKNOWN:
            return unknown_transaction(intent)
        if answer == EXCEEDS:
            return refund_exceeds(intent, left, whole)
        for award, share in reversals:
            result.reversed[award.program] = result.reversed.get(award.program, 0) + share
            self._line(False, intent, award.program, award.version, -share, award.provider,
                       intent.refund_of)
        return None

    cdef int _line(self, bint award, object intent, str program, int version, int64_t points,
                   str provider, str transaction) except -1:
        """A ledger line of the Python path: written by :meth:`line` when every text is one it
        writes as it is, else by :meth:`LedgerEntry.to_json`, which escapes (the same bytes
        either way for texts that need no escape)."""
        cdef Py_ssize_t event_size, person_size, at_size, tx_size = 0
        cdef const char* event
        cdef const char* person
        cdef const char* at
        cdef const char* tx = NULL
        texts = (intent.event, intent.person, intent.at, program, provider)
        if all([as_is(text) for text in texts]) and (transaction is None
                                                      or as_is(transaction)):
            event = PyUnicode_AsUTF8AndSize(intent.event, &event_size)
            person = PyUnicode_AsUTF8AndSize(intent.person, &person_size)
            at = PyUnicode_AsUTF8AndSize(intent.at, &at_size)
            if transaction is not None:
                tx = PyUnicode_AsUTF8AndSize(transaction, &tx_size)
            return self.line(award, event, event_size, person, person_size, program.encode(),
                             version, points, provider.encode(), at, at_size, tx, tx_size)
        self._seq += 1
        text = LedgerEntry(self._seq, "award" if award else "reversal", intent.event,
                           intent.person, program, version, points, provider, intent.at,
                           transaction).to_json()
        reserve(&self.ledger, len(text))
        put(&self.ledger, <const char*>text, len(text))
        return 0


cdef inline int _add(dict table, object key, int64_t amount) except -1:
    cdef PyObject* found = PyDict_GetItem(table, key)
    PyDict_SetItem(table, key, amount if found == NULL
                   else PyLong_AsLongLong(<object>found) + amount)
    return 0
