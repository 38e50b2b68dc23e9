# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The replay's fast lane: the commonest lines decided, and applied, in compiled code.

Charges, purchases, refunds, Mynapoint applications and the two registrations are nearly every
line of a replay. For each the Python path (parse, build the fact, route, ask each ruleset,
make claims and intents, apply them in the store) costs some hundred times what decoding the
line does. The lane does the same work for the same lines without making an object per
event, with exactly the engine's results:

- :mod:`pointengine.model.scan` reads the line; a line it does not take, and every other type of
  event, goes to the Python path (:meth:`Lane.run` stops before it), so the lane gives no
  error of its own beyond the engine's and the store's (an unknown provider, another
  provider for the phase, a duplicate, a refund of an unknown transaction or of more than
  was paid);
- the fact is the one :func:`pointengine.decide.facts.build_fact` builds, as integers
  (:mod:`pointengine.lane.memo`), the person's part from a :class:`~pointengine.lane.digest.Digest`;
  a person changed by an application or a registration is changed as
  ``Engine._changed_person`` changes it;
- routes are the engine's (:meth:`Engine.programs_for`), remembered per provider, per
  residence and per store place;
- each ruleset's answer is looked up under the key
  :class:`~pointengine.decide.matching.CompiledRuleset` computes, a key not seen before being
  answered from the known outcomes of its checks, else by the ruleset itself, that is by
  durable_rules (:class:`~pointengine.lane.memo.Plan`); a route keeps, for each program of one
  version, that version and its plan's block, which are fetched into the cache as the route
  is read (1,741 programs of one template are each decided now and then, seldom in the cache);
- on the embedded store, what it decides is applied by the store's own apply step
  (:class:`~pointengine.store.apply.Tables`: admissions, clipping to caps, counting, refunds,
  transaction records, event keys, ledger lines), the one the Python path's intents take
  too; the lane only decides and finds the counters' slots (remembered per person and
  program); on the Redis store (``intents``), what is decided is written as a compact
  batch for the store's script (:mod:`pointengine.replay.redis_replay`).

A program the lane cannot decide (an award other than a premium or a grant, a comparison it
does not class) sends the events routed to it to the Python path. ``tests/lane/test_lane.py`` and
``tests/replay/test_redis_replay.py`` replay generated, adversarial and hypothesis streams both ways
and compare ledgers, rejects and state.
"""

from typing import Any, NamedTuple

import orjson

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.datetime cimport date_new, datetime_new, import_datetime
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcmp, memcpy, memset


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)


cdef extern from *:
    void __builtin_prefetch(const void* address) noexcept nogil


from pointengine.store.compact cimport Counters, KeyTable, fingerprint_bytes
from pointengine.lane.digest cimport (
    MOVED,
    Digest,
    copied,
    interned,
    new_enrolment,
    new_person,
)
from pointengine.lane.memo cimport (
    N_SLOTS,
    Plan,
    S_ACCOUNT,
    S_AGE,
    S_APPLIED1,
    S_BASIS1,
    S_CARD,
    S_CHOSEN1,
    S_CHOSEN2,
    S_DAY,
    S_HEALTH,
    S_PHASE1,
    S_PROVIDER,
    S_RESIDENCE,
    S_RESIDENCE_PREF,
    S_STORE,
    S_STORE_PLACE,
    S_STORE_PREF,
    S_TYPE,
    Symbols,
    VectorMemo,
    decide,
)
from pointengine.store.apply cimport EXCEEDS, UNKNOWN, Tables, as_is
from pointengine.store.records cimport Award, new_award
from pointengine.store.wire cimport Buffer, put, put_integer, put_quoted, reserve
from pointengine.model.scan cimport (
    ACCOUNT,
    APPLICATION,
    CHARGE,
    F_AMOUNT,
    F_AT,
    F_BIRTH,
    F_CARD,
    F_CHILDREN,
    F_HOUSEHOLD,
    F_ID,
    F_PERSON,
    F_PHASE,
    F_PHASE1,
    F_PROVIDER,
    F_RESIDENCE,
    F_SOURCE,
    F_STORE,
    F_TRANSACTION,
    F_WHERE,
    HEALTH,
    NOT_TAKEN,
    PURCHASE,
    REFUND,
    V_ARRAY,
    V_NUMBER,
    V_TEXT,
    V_TRUE,
    Line,
    Moment,
    Value,
    datetime_epoch_us,
    event_kind,
    format_jst,
    is_blank,
    next_text,
    parse_day,
    parse_moment,
    scan_object,
)

from pointengine.decide.awards import GROUP, PERSON, PROGRAM, claim_template
from pointengine.decide.engine import ROUTES_KEPT
from pointengine.catalog.loading import _EPOCH
from pointengine.errors import IntegrityError
from pointengine.model.events import in_jst
from pointengine.model.jst import JST
from pointengine.lane.memo import SLOT_NAMES
from pointengine.store.redis_store import person_to_json
from pointengine.model.municipalities import registry
from pointengine.catalog.programs import Grant, Premium
from pointengine.model.refusals import Refusal, refusal_message

cdef enum:
    MAX_CLAIMS = 32     # programs one event can be decided by in the lane
    MAX_KEYS = 8        # shared caps, or admissions, of one claim plan
    RECENT = 4          # claim plans a version remembers inline (the rest: its dict)
    N_KINDS = 7         # the scanner's kinds of event (NOT_TAKEN included)
    NO_PREMIUM = 0
    PREMIUM = 1
    GRANT = 2

import_datetime()

cdef bytes _REFUSED_TAIL = b',"","","",false,0,false,0,"",[],1]'  # see Lane._refuse
_ROUTE_FIELDS = ("provider", "residence", "residence_pref", "store_place", "store_pref")
_ROUTE_PARTS = (("provider",), ("residence", "residence_pref"), ("store_place", "store_pref"))
cdef Py_ssize_t _ROUTES_KEPT = ROUTES_KEPT
cdef object _JST = JST


# --- programs, their versions and the claims they make -----------------------------------------

cdef class ClaimPlan:
    """Everything of one version's claims paid to one provider but the person and the points
    (from :func:`pointengine.decide.awards.claim_template`)."""

    # first, what a claim reads (Lane._claim), in a few cache lines
    cdef Counters bound  # whose slots these are; None: not looked up yet
    cdef str person_prefix, group_prefix, member_prefix
    cdef tuple shared_keys
    cdef bint has_group
    cdef int n_shared, n_admissions, version
    cdef int64_t person_limit, group_limit
    cdef tuple totals_key
    cdef bytes program_json, provider_json
    cdef str program, provider
    # the slots of the shared caps (each beside its limit: one cache line for the first
    # four) and of the admissions in the embedded store's counters
    cdef int64_t[2 * MAX_KEYS] shared_caps  # slot, limit, slot, limit...
    cdef Py_ssize_t[MAX_KEYS] admission_slots
    cdef int64_t[MAX_KEYS] admission_limits
    cdef list shared       # [(key, limit)]
    cdef list admissions   # [(key, limit)]
    cdef tuple caps        # the template's caps: the same for every provider of a version
    cdef int index  # in the lane's claim plans for the Redis store's script; -1: none yet

    cdef int build(self, object version, str provider, ClaimPlan base) except -1:
        """Read ``version``'s claim template for ``provider``; what depends on the caps alone
        is taken from ``base`` (the version's plan for another provider, or None) when the
        template's caps are its caps."""
        self.index = -1
        template = claim_template(version, provider)
        if base is not None and template.caps == base.caps:
            self.caps = base.caps
            self.program = base.program
            self.version = base.version
            self.person_prefix = base.person_prefix
            self.person_limit = base.person_limit
            self.has_group = base.has_group
            self.group_prefix = base.group_prefix
            self.group_limit = base.group_limit
            self.shared = base.shared
            self.shared_keys = base.shared_keys
            self.program_json = base.program_json
        else:
            known = _known_caps(template)
            if known is None:
                raise IntegrityError(f"{version.label}: caps the lane does not apply")
            own, group, shared = known
            self.caps = template.caps
            self.program = version.id
            self.version = version.version
            self.person_prefix = own.key
            self.person_limit = own.limit
            self.has_group = group is not None
            if self.has_group:
                self.group_prefix = group.key
                self.group_limit = group.limit
            self.shared = [(interned(cap.key), cap.limit) for cap in shared]
            self.shared_keys = tuple(key for key, _ in self.shared)
            self.program_json = _json_text(self.program)
        self.provider = provider
        self.admissions = [(interned(a.key), a.limit) for a in template.admissions]
        self.member_prefix = f"in|{version.id}|" if self.admissions else None
        self.totals_key = (self.program, provider)
        self.provider_json = _json_text(provider)
        self.n_shared = len(self.shared)
        self.n_admissions = len(self.admissions)
        if self.n_admissions > MAX_KEYS:
            raise IntegrityError(f"{version.label}: more admissions than the lane keeps")
        self.bound = None
        return 0

    cdef int bind(self, Counters counters) except -1:
        """Look up the slots of the shared caps and admissions in ``counters``."""
        cdef int k
        for k in range(self.n_shared):
            self.shared_caps[2 * k] = counters.slot(self.shared[k][0])
            self.shared_caps[2 * k + 1] = self.shared[k][1]
        for k in range(self.n_admissions):
            self.admission_slots[k] = counters.slot(self.admissions[k][0])
            self.admission_limits[k] = self.admissions[k][1]
        self.bound = counters
        return 0


cdef object _known_caps(object template):
    """``(own, group, shared)`` when every cap of a claim template is of a shape the lane
    applies: the person's own cap with a limit, at most one group cap (None when none), then
    the program's own caps (a list), none of them per period; None for any other shape."""
    caps = template.caps
    if not caps:
        return None
    own = caps[0]
    if own.scope != PERSON or own.period is not None or own.limit is None:
        return None
    rest = list(caps[1:])
    group = None
    if rest and rest[0].scope == GROUP and rest[0].period is None:
        group = rest.pop(0)
    if len(rest) > MAX_KEYS:
        return None
    for cap in rest:
        if cap.scope != PROGRAM or cap.period is not None:
            return None
    return own, group, rest


cdef class VersionLane:
    """One program version as the lane decides it."""

    # first, what _claims and _claim read: a cache line or two
    cdef const int64_t* code  # the plan's block (memo.decide)
    cdef Plan plan
    cdef int award, phase, chosen_slot, n_recent
    cdef int64_t rate, amount
    cdef int64_t[RECENT] recent_providers  # the providers of the claim plans last used
    cdef PyObject* recent[RECENT]          # and those plans (held by claims)
    cdef object version
    cdef dict claims  # provider symbol -> ClaimPlan
    cdef ClaimPlan base  # the plan for no provider in particular, whose caps most share
    cdef bint supported

    cdef int build(self, Lane lane, object version) except -1:
        self.version = version
        self.plan = lane.plan(version)
        self.code = self.plan.code
        self.phase = version.phase
        self.chosen_slot = S_CHOSEN1 if self.phase == 1 else S_CHOSEN2
        self.claims = {}
        self.n_recent = 0
        award = version.award
        if isinstance(award, Premium):
            self.award = PREMIUM
            self.rate = award.rate
        elif isinstance(award, Grant):
            self.award = GRANT
            self.amount = award.amount
        else:
            self.award = NO_PREMIUM
        # unknown means refuse: a cap the lane does not apply sends the program to the
        # Python path, which applies every cap a template can make
        self.supported = (self.plan.supported and self.award != NO_PREMIUM
                          and _known_caps(claim_template(version, "")) is not None)
        self.base = None
        if self.supported:
            self.base = ClaimPlan()
            self.base.build(version, "", None)
        return 0

    cdef ClaimPlan claim_plan(self, Lane lane, int64_t provider):
        cdef int k
        for k in range(self.n_recent):
            if self.recent_providers[k] == provider:
                return <ClaimPlan>self.recent[k]
        found = self.claims.get(provider)
        if found is None:
            found = ClaimPlan()
            (<ClaimPlan>found).build(self.version, lane.table.names[provider], self.base)
            self.claims[provider] = found
        # remembered inline, the oldest dropped: a program pays few providers
        k = self.n_recent if self.n_recent < RECENT else RECENT - 1
        while k > 0:
            self.recent_providers[k] = self.recent_providers[k - 1]
            self.recent[k] = self.recent[k - 1]
            k -= 1
        self.recent_providers[0] = provider
        self.recent[0] = <PyObject*>found
        if self.n_recent < RECENT:
            self.n_recent += 1
        return <ClaimPlan>found


cdef class ProgramLane:
    """A program's versions, with the instants from which each is in force."""

    # first, what at() reads of a program of one version (most): a cache line
    cdef int n
    cdef VersionLane only  # the version of a program of one version
    cdef list versions
    cdef int64_t[64] starts
    cdef bint supported, reads_store

    cdef int build(self, Lane lane, object program) except -1:
        self.versions = []
        self.n = len(program.versions)
        self.supported = self.n <= 64
        self.reads_store = False
        for k, version in enumerate(program.versions[:64]):
            lane_version = lane.version_lane(version)
            self.versions.append(lane_version)
            self.starts[k] = datetime_epoch_us(in_jst(version.effective_from or _EPOCH))
            self.supported = self.supported and (<VersionLane>lane_version).supported
            self.reads_store = (self.reads_store
                                or (<VersionLane>lane_version).plan.reads_store)
        self.only = <VersionLane>self.versions[0] if self.n == 1 else None
        return 0

    cdef VersionLane at(self, int64_t epoch_us):
        """``Program.version_at``: the last version in force at the instant (the first one
        before any)."""
        cdef int k = 0
        if self.n == 1:
            return self.only
        while k + 1 < self.n and self.starts[k + 1] <= epoch_us:
            k += 1
        return <VersionLane>self.versions[k]


cdef struct Item:
    PyObject* program       # a ProgramLane (held by its Route)
    PyObject* only          # its VersionLane when it has one version, else NULL
    const int64_t* code     # that version's plan block (memo.decide), else NULL


cdef class Route:
    """The programs an event of one type, provider and set of places can concern."""

    # first, what Lane.programs reads: with a route's first items, a cache line or two
    cdef int n
    cdef bint supported, reads_store
    cdef int64_t second  # the last part of its key (a place's prefecture)
    cdef Item items[MAX_CLAIMS]  # the programs, when supported (held by programs)
    cdef list programs  # ProgramLane


cdef struct Claim:
    PyObject* lane_version
    int64_t provider
    int64_t points


class Batch(NamedTuple):
    """A compact batch for the Redis store's script (its contract: redis_store.py)."""

    intents: bytes   # ARGV[1]
    plans: bytes     # ARGV[2]
    lines: list[int]  # each intent's line, by its index in the block
    claims: list[int]  # each intent's number of claims
    persons: list[tuple[int, str, bytes, Any]]  # (intent, id, JSON, Person) of changed persons
    refusals: list[tuple[int, str, str]]  # (intent, code, message) of the engine's refusals


# --- the lane ---------------------------------------------------------------------------------

cdef class Lane:
    """Applies charge, purchase and refund lines to a :class:`MemoryStore` for an engine.

    Made by :meth:`Engine.lane <pointengine.decide.engine.Engine.lane>`; dropped with the engine's
    rulesets (a new catalog, ``close``). Between two calls of :meth:`run` the Python path may
    apply events to the same store: the lane keeps no state of the store's own.
    """

    cdef object engine, store
    cdef Symbols table             # the facts' strings, numbered
    cdef int64_t[7] type_symbols
    cdef bytes provider_text       # every known provider's id, one after the other
    cdef Py_ssize_t[256] provider_starts
    cdef Py_ssize_t[256] provider_sizes
    cdef int64_t[256] provider_syms
    cdef int n_providers
    cdef dict bases                # provider id -> symbol of its basis
    cdef int32_t* code_place       # store municipality code (as a number) -> symbols
    cdef int32_t* code_pref
    cdef KeyTable digest_index     # fingerprint of a person's id -> index in digest_list
    cdef list digest_list          # Digest of each person read
    # A digest whose epoch is the lane's holds the Person the store holds: the lane keeps
    # its digests up to date as it changes persons itself; a person the embedded store
    # wrote (its person_watch) loses its epoch, and in intents mode the epoch moves on with
    # each run (the caller hands the lane the block's persons).
    cdef int64_t epoch
    cdef list person_watch
    cdef dict plans                # id(ruleset) -> Plan
    cdef dict version_lanes        # id(version) -> (version, VersionLane)
    cdef dict program_lanes        # id(program) -> (program, ProgramLane)
    cdef list route_memos          # per part of a route (see route): a VectorMemo
    cdef list routes               # per part: the Routes its memo indexes
    cdef PyObject** direct_routes  # [part][kind][symbol] of the symbols known at the start
    cdef Py_ssize_t n_direct
    cdef KeyTable applied, paid
    cdef Counters counters
    cdef public dict persons
    cdef set members
    # Intents mode (the Redis store): what is decided is written as a compact batch for the
    # store's script instead of applied; ``seen`` holds the keys applied or sent before.
    cdef bint intents
    cdef public set seen
    cdef list plan_rows            # the batch's claim plans, by ClaimPlan.index
    cdef Buffer wire               # the batch for the script
    cdef Py_ssize_t batch_count
    cdef list batch_lines, batch_claims, batch_persons, batch_refusals
    cdef str current_event
    cdef object health, account
    cdef public Py_ssize_t lines, taken_applied, duplicates, rejected
    cdef public list rejects
    # the write-back journal (pointengine.store.writeback.Journal) of a store that has one: what
    # the lane wrote, for the store to write through to Redis; None when there is none
    cdef Tables tables             # the embedded store's, which apply what the lane decides

    def __cinit__(self) -> None:
        self.code_place = NULL
        self.code_pref = NULL
        self.direct_routes = NULL
        self.wire = Buffer(NULL, 0, 0)

    def __dealloc__(self) -> None:
        PyMem_Free(self.code_place)
        PyMem_Free(self.code_pref)
        PyMem_Free(self.direct_routes)
        PyMem_Free(self.wire.data)

    def __init__(self, engine: object, store: object, *, intents: bool = False) -> None:
        cdef int k
        cdef Py_ssize_t code
        self.engine = engine
        self.store = store
        self.intents = intents
        self.table = Symbols()
        self.type_symbols[PURCHASE] = self.symbol("purchase")
        self.type_symbols[CHARGE] = self.symbol("charge")
        self.type_symbols[REFUND] = self.symbol("refund")
        self.type_symbols[APPLICATION] = self.symbol("mynapoint_application")
        self.type_symbols[HEALTH] = self.symbol("health_insurance_registration")
        self.type_symbols[ACCOUNT] = self.symbol("public_funds_account_registration")
        bases = engine.catalog.bases()
        if len(bases) > 256:
            raise IntegrityError("the lane reads at most 256 providers")
        self.provider_text = b"".join(p.encode() for p in bases)
        self.n_providers = 0
        code = 0
        for p in bases:
            self.provider_starts[self.n_providers] = code
            self.provider_sizes[self.n_providers] = len(p)
            self.provider_syms[self.n_providers] = self.symbol(p)
            code += len(p)
            self.n_providers += 1
        self.bases = {p: self.symbol(b) for p, b in bases.items()}
        self.code_place = <int32_t*>PyMem_Malloc(1000000 * sizeof(int32_t))
        self.code_pref = <int32_t*>PyMem_Malloc(1000000 * sizeof(int32_t))
        if self.code_place == NULL or self.code_pref == NULL:
            raise MemoryError()
        for code in range(1000000):
            self.code_place[code] = -1
        codes = registry()
        for text in codes.codes():
            if codes.get(text).kind != "prefecture" and len(text) == 6 and text.isdigit():
                place, pref = codes.places(text)
                self.code_place[int(text)] = self.symbol(place)
                self.code_pref[int(text)] = self.symbol(pref)
        self.digest_index = KeyTable()
        self.digest_list = []
        self.epoch = 1
        self.plans = {}
        self.version_lanes = {}
        self.program_lanes = {}
        self.route_memos = [VectorMemo(3, _ROUTES_KEPT) for _ in range(3)]
        self.routes = [[], [], []]
        self.n_direct = len(self.table.names)
        self.direct_routes = <PyObject**>PyMem_Malloc(3 * N_KINDS * self.n_direct
                                                      * sizeof(PyObject*))
        if self.direct_routes == NULL:
            raise MemoryError()
        self._forget_direct_routes()
        if intents:
            self.persons = {}
            self.seen = set()
            self.plan_rows = []
            self._new_batch()
        else:
            self.tables = <Tables?>store
            self.applied = store._applied
            self.paid = store._paid
            self.counters = store._counters
            self.persons = store._persons
            self.person_watch = store.person_watch = []
            self.members = store._members
        self.health = "health_insurance"
        self.account = "public_funds_account"
        self.lines = self.taken_applied = self.duplicates = self.rejected = 0
        self.rejects = []

    def prepare(self) -> None:
        """Make the lane's view of every program now rather than on its first event (a
        service does this at startup, with the rulesets' compilation)."""
        for program in self.engine.catalog.programs.values():
            self.program_lane(program)

    def close(self) -> None:
        """Let go of the rulesets' memos that no other lane uses."""
        cdef int k
        for plan in self.plans.values():
            (<Plan>plan).release()
        self.plans = {}
        self.version_lanes = {}
        self.program_lanes = {}
        for k in range(3):
            self.routes[k] = []
            (<VectorMemo>self.route_memos[k]).clear()
        self._forget_direct_routes()

    cdef void _forget_direct_routes(self) noexcept:
        """Empty the array of routes (its Routes are held by ``routes``)."""
        memset(self.direct_routes, 0, 3 * N_KINDS * self.n_direct * sizeof(PyObject*))

    cdef inline int64_t symbol(self, str text) except -1:
        return self.table.symbol(text)

    cdef Plan plan(self, object version):
        ruleset = self.engine.ruleset(version)
        found = self.plans.get(id(ruleset))
        if found is None:
            found = Plan()
            (<Plan>found).build(self.table, ruleset)
            self.plans[id(ruleset)] = found
        return <Plan>found

    cdef VersionLane version_lane(self, object version):
        found = self.version_lanes.get(id(version))
        if found is None or found[0] is not version:
            lane_version = VersionLane()
            lane_version.build(self, version)
            found = self.version_lanes[id(version)] = (version, lane_version)
        return <VersionLane>found[1]

    cdef ProgramLane program_lane(self, object program):
        found = self.program_lanes.get(id(program))
        if found is None or found[0] is not program:
            lane_program = ProgramLane()
            lane_program.build(self, program)
            found = self.program_lanes[id(program)] = (program, lane_program)
        return <ProgramLane>found[1]

    cdef Route route(self, int64_t* fact, int kind, int part):
        """The programs of one part of an event's route: its provider's (0), its person's
        places' (1) or its store's places' (2). The engine's route is the three in turn,
        each program once: the order :meth:`Engine.programs_for` gives.

        Remembered in an array for the places and providers known when the lane was made
        (nearly every event), else in a memo of the whole key."""
        cdef int64_t[3] key
        cdef int32_t index
        cdef VectorMemo memo
        cdef list routes
        cdef Py_ssize_t cell = -1
        cdef PyObject* cached
        key[0] = fact[S_TYPE]
        if part == 0:
            key[1] = key[2] = fact[S_PROVIDER]
        elif part == 1:
            key[1] = fact[S_RESIDENCE]
            key[2] = fact[S_RESIDENCE_PREF]
        else:
            key[1] = fact[S_STORE_PLACE]
            key[2] = fact[S_STORE_PREF]
        if 0 <= key[1] < self.n_direct:
            cell = (part * N_KINDS + kind) * self.n_direct + key[1]
            cached = self.direct_routes[cell]
            if cached != NULL and (<Route>cached).second == key[2]:
                return <Route>cached
        memo = <VectorMemo>self.route_memos[part]
        routes = <list>self.routes[part]
        if memo.get(key, &index):
            found = <Route>routes[index]
            if cell >= 0:
                self.direct_routes[cell] = <PyObject*>found
            return found
        if memo.count + 1 >= _ROUTES_KEPT:
            memo.clear()
            del routes[:]
            self._forget_direct_routes()
        given = {name: "" for name in _ROUTE_FIELDS}
        for name in _ROUTE_PARTS[part]:
            given[name] = self.table.names[fact[SLOT_NAMES.index(name)]]
        found = Route()
        found.programs = [self.program_lane(p)
                          for p in self.engine.programs_for(self.table.names[key[0]], given)]
        found.supported = len(found.programs) <= MAX_CLAIMS
        for p in found.programs:
            found.supported = found.supported and (<ProgramLane>p).supported
        found.n = 0
        if found.supported:
            for p in found.programs:
                found.items[found.n].program = <PyObject*>p
                found.items[found.n].only = NULL
                found.items[found.n].code = NULL
                if (<ProgramLane>p).n == 1:
                    found.items[found.n].only = <PyObject*>(<ProgramLane>p).only
                    found.items[found.n].code = (<ProgramLane>p).only.code
                found.n += 1
        found.reads_store = False
        for p in found.programs:
            found.reads_store = found.reads_store or (<ProgramLane>p).reads_store
        found.second = key[2]
        memo.put(key, len(routes))
        routes.append(found)
        if cell >= 0:
            self.direct_routes[cell] = <PyObject*>found
        return found

    cdef int programs(self, int64_t* fact, int kind, Item* out,
                      bint* reads_store) except -2:
        """The event's programs into ``out`` (each once, in the engine's order); their count,
        or -1 when one of them is not the lane's to decide. The plan block of each program
        of one version is fetched into the cache on the way."""
        cdef int n = 0, part, k, j
        cdef Route route
        cdef Item* item
        reads_store[0] = False
        for part in range(3):
            route = self.route(fact, kind, part)
            if not route.supported:
                return -1
            reads_store[0] = reads_store[0] or route.reads_store
            for k in range(route.n):
                item = &route.items[k]
                j = 0
                while j < n and out[j].program != item.program:
                    j += 1
                if j < n:
                    continue  # already there
                if n >= MAX_CLAIMS:
                    return -1
                out[n] = item[0]
                if item.code != NULL:
                    __builtin_prefetch(item.code)
                n += 1
        return n

    # the ledger's lines

    # intents mode: the batch for the Redis store's script

    cdef int _new_batch(self) except -1:
        self.wire.size = 0
        reserve(&self.wire, 1)
        put(&self.wire, b"[", 1)
        self.batch_count = 0
        self.batch_lines = []
        self.batch_claims = []
        self.batch_persons = []
        self.batch_refusals = []
        return 0

    cdef int _send(self, Py_ssize_t index, const unsigned char* s, Value* f, Moment* m,
                   char* key, Py_ssize_t key_size, bytes person_json, Claim* claims,
                   int n_claims) except -1:
        """Write one compact intent (the store's script reads it as its ARGV[1] says): a
        transaction, a refund (no claims, no person) or a person's event (with the person's
        new JSON)."""
        cdef char[32] at
        cdef Py_ssize_t at_size = format_jst(m, at), k
        cdef bint refund = f[F_TRANSACTION].kind == V_TEXT
        cdef bint transaction = f[F_AMOUNT].kind == V_NUMBER and not refund
        cdef Value* person = &f[F_PERSON]
        cdef Value* provider = &f[F_PROVIDER]
        cdef char[160] of
        cdef Py_ssize_t of_size
        cdef const char* pj
        cdef Py_ssize_t pj_size = 0
        if person_json is not None:
            pj_size = PyBytes_GET_SIZE(person_json)
        reserve(&self.wire, 512 + 2 * pj_size + 24 * n_claims)
        put(&self.wire, b"," if self.batch_count else b"", 1 if self.batch_count else 0)
        put(&self.wire, b"[", 1)
        put_quoted(&self.wire, key, key_size)
        put(&self.wire, b",", 1)
        put_quoted(&self.wire, <const char*>s + person.start, person.size)
        put(&self.wire, b",", 1)
        put_quoted(&self.wire, at, at_size)
        put(&self.wire, b',"', 2)
        if person_json is not None:
            pj = PyBytes_AS_STRING(person_json)
            for k in range(pj_size):
                if pj[k] == b'"' or pj[k] == b'\\':
                    self.wire.data[self.wire.size] = b'\\'
                    self.wire.size += 1
                self.wire.data[self.wire.size] = pj[k]
                self.wire.size += 1
        put(&self.wire, b'",', 2)
        if transaction:
            put_quoted(&self.wire, key, key_size)
            put(&self.wire, b",", 1)
            put_integer(&self.wire, f[F_AMOUNT].number)
        else:
            put(&self.wire, b"false,0", 7)
        put(&self.wire, b",", 1)
        if refund:
            of_size = _join(of, s, &f[F_SOURCE], b'/', &f[F_TRANSACTION])
            put_quoted(&self.wire, of, of_size)
            put(&self.wire, b",", 1)
            put_integer(&self.wire, f[F_AMOUNT].number)
        else:
            put(&self.wire, b"false,0", 7)
        put(&self.wire, b',"', 2)
        if refund or transaction:
            put(&self.wire, <const char*>s + person.start, person.size)
            put(&self.wire, b"|", 1)
            put(&self.wire, <const char*>s + provider.start, provider.size)
        put(&self.wire, b'",[', 3)
        for k in range(n_claims):
            if k:
                put(&self.wire, b",", 1)
            put_integer(&self.wire, self._plan_index(&claims[k]))
            put(&self.wire, b",", 1)
            put_integer(&self.wire, claims[k].points)
        put(&self.wire, b"]]", 2)
        if person_json is not None:
            self.batch_persons.append((self.batch_count, _ascii(s, person), person_json,
                                       self.persons[_ascii(s, person)]))
        self.batch_count += 1
        self.batch_lines.append(index)
        self.batch_claims.append(n_claims)
        if not refund:
            self.seen.add(PyUnicode_DecodeASCII(key, key_size, NULL))
        return 0

    cdef int _plan_index(self, Claim* claim) except -1:
        cdef VersionLane version = <VersionLane>claim.lane_version
        cdef ClaimPlan plan = version.claim_plan(self, claim.provider)
        if plan.index < 0:
            plan.index = len(self.plan_rows)
            self.plan_rows.append([plan.program, plan.version, plan.provider,
                                   plan.member_prefix or "",
                                   [list(a) for a in plan.admissions], plan.person_prefix,
                                   plan.person_limit,
                                   plan.group_prefix if plan.has_group else "",
                                   plan.group_limit if plan.has_group else 0,
                                   [list(c) for c in plan.shared]])
        return plan.index

    def persons_of(self, list raws, object flagged=None) -> list[str]:
        """The persons of the lines the lane may take, each once, in order: to be read from
        the store before :meth:`run` (intents mode)."""
        cdef Py_ssize_t i
        cdef Line line
        cdef const unsigned char* s
        cdef Value* f = line.fields
        persons = {}
        for i in range(PyList_GET_SIZE(raws)):
            if flagged is not None and i in flagged:
                continue
            raw = <object>PyList_GET_ITEM(raws, i)
            s = <const unsigned char*>PyBytes_AS_STRING(raw)
            if scan_object(s, PyBytes_GET_SIZE(raw), &line) \
                    and event_kind(s, &line) != NOT_TAKEN:
                persons[_ascii(s, &f[F_PERSON])] = None
        return list(persons)

    def take_batch(self) -> Batch:
        """The intents sent since the last call (intents mode)."""
        reserve(&self.wire, 1)
        put(&self.wire, b"]", 1)
        out = Batch(PyBytes_FromStringAndSize(self.wire.data, self.wire.size),
                    orjson.dumps(self.plan_rows), self.batch_lines, self.batch_claims,
                    self.batch_persons, self.batch_refusals)
        self._new_batch()
        return out

    # counters

    cdef int _applied_now(self, int64_t fp, char* key, Py_ssize_t key_size) except -1:
        """The line's event is applied: its key goes into the applied table (and the
        journal, which alone needs it as a string)."""
        self.tables.mark_applied(fp, PyUnicode_DecodeASCII(key, key_size, NULL)
                                 if self.tables.journal is not None else None)
        self.taken_applied += 1
        return 0

    cdef int _refuse(self, Py_ssize_t index, object code, dict facts) except -1:
        """Refuse the current line for ``code`` (a :class:`Refusal`). In intents mode the
        refusal is sent to the store's script, which answers whether the event was applied
        before (then it is a duplicate, as the engine finds first) or not (then it is
        refused)."""
        cdef const char* event
        cdef Py_ssize_t size
        message = refusal_message(code, **facts)
        if not self.intents:
            self.rejected += 1
            self.rejects.append((index, code, message))
            return 0
        event = PyUnicode_AsUTF8AndSize(self.current_event, &size)
        reserve(&self.wire, 64 + size)
        put(&self.wire, b"," if self.batch_count else b"", 1 if self.batch_count else 0)
        put(&self.wire, b"[", 1)
        put_quoted(&self.wire, event, size)
        put(&self.wire, _REFUSED_TAIL, len(_REFUSED_TAIL))
        self.batch_refusals.append((self.batch_count, code, message))
        self.batch_count += 1
        self.batch_lines.append(index)
        self.batch_claims.append(0)
        return 0

    # one line

    def run(self, list raws, Py_ssize_t start, object flagged=None) -> int:
        """Apply ``raws[start:]`` in order until a line the lane does not take; return its
        index (``len(raws)`` when it took them all). ``flagged``: indices of lines that may
        carry a My Number, which the lane leaves to the Python path.

        Counts what it did in ``lines``, ``taken_applied``, ``duplicates`` and ``rejected``,
        and appends ``(index, code, message)`` to ``rejects`` for each refusal.
        """
        cdef Py_ssize_t i = start, n = PyList_GET_SIZE(raws)
        cdef object raw
        cdef const unsigned char* s
        cdef Py_ssize_t size
        if self.intents:
            self.epoch += 1
        elif self.person_watch:
            self._forget_persons()
        try:
            while i < n:
                if flagged is not None and i in flagged:
                    break
                raw = <object>PyList_GET_ITEM(raws, i)
                s = <const unsigned char*>PyBytes_AS_STRING(raw)
                size = PyBytes_GET_SIZE(raw)
                if not is_blank(s, size) and not self._take(s, size, i):
                    break
                i += 1
        finally:
            if not self.intents:
                self.tables.flush_ledger()
        return i

    cdef int _forget_persons(self) except -1:
        """Take the epoch from the digests of the persons the store wrote."""
        cdef Py_ssize_t size
        cdef const char* text
        cdef int64_t index
        for person_id in self.person_watch:
            text = PyUnicode_AsUTF8AndSize(person_id, &size)
            if self.digest_index.get_fp(fingerprint_bytes(text, size), &index):
                (<Digest>PyList_GET_ITEM(self.digest_list, index)).epoch = 0
        del self.person_watch[:]
        return 0

    cdef bint _take(self, const unsigned char* s, Py_ssize_t size, Py_ssize_t index) except -1:
        """Decide and apply one line; False (nothing changed) when the Python path must."""
        cdef Line line
        cdef Moment m
        cdef int kind
        cdef int64_t provider = 0, place = 0, pref = 0, fp
        cdef Value* f = line.fields
        cdef char[160] key
        cdef Py_ssize_t key_size
        if not scan_object(s, size, &line):
            return False
        kind = event_kind(s, &line)
        if kind == NOT_TAKEN:
            return False
        key_size = _join(key, s, &f[F_SOURCE], b'/', &f[F_ID])
        fp = 0
        if not self.intents:
            # both tables are larger than the cache: start their reads now, while the rest
            # of the line is read
            fp = fingerprint_bytes(key, key_size)
            self.applied.prefetch(fp)
            self.digest_index.prefetch(fingerprint_bytes(<const char*>s + f[F_PERSON].start,
                                                         f[F_PERSON].size))
        if not parse_moment(s + f[F_AT].start, f[F_AT].size, &m):
            return False
        if (kind == PURCHASE or kind == CHARGE) and f[F_WHERE].kind == V_TEXT:
            if not self._place(s, &f[F_WHERE], &place, &pref):
                return False  # unknown, or a prefecture: the Python path says which
        if kind == APPLICATION and not self._application_valid(s, f):
            return False
        if kind != HEALTH and kind != ACCOUNT:
            provider = self._provider(s, &f[F_PROVIDER])
        if self.intents:
            event = PyUnicode_DecodeASCII(key, key_size, NULL)
            self.current_event = event
            duplicate = event in self.seen
        else:
            duplicate = self.applied.has_fp(fp)
        if duplicate:
            self.duplicates += 1
        elif provider < 0:
            self._refuse(index, Refusal.UNKNOWN_PROVIDER,
                         {"provider": _ascii(s, &f[F_PROVIDER])})
        elif kind == REFUND:
            if self.intents:
                self._send(index, s, f, &m, key, key_size, None, NULL, 0)
            else:
                self._refund(s, &line, &m, key, key_size, fp, index)
        elif kind == PURCHASE or kind == CHARGE:
            if not self._transaction(s, &line, &m, kind, provider, place, pref, key, key_size,
                                     fp, index):
                return False
        elif not self._person_event(s, &line, &m, kind, provider, key, key_size, fp, index):
            return False
        self.lines += 1
        return True

    cdef bint _place(self, const unsigned char* s, Value* v, int64_t* place,
                     int64_t* pref) noexcept:
        """The symbols of a municipality code's place and prefecture; False for a code that is
        not a municipality's."""
        cdef int64_t code = 0
        cdef Py_ssize_t k
        if v.size != 6:
            return False
        for k in range(6):
            if not 48 <= s[v.start + k] <= 57:
                return False
            code = code * 10 + (s[v.start + k] - 48)
        if self.code_place[code] < 0:
            return False
        place[0] = self.code_place[code]
        pref[0] = self.code_pref[code]
        return True

    cdef int64_t _provider(self, const unsigned char* s, Value* v) noexcept:
        """The symbol of a known provider; -1 for one the catalog does not list."""
        cdef const char* names = PyBytes_AS_STRING(self.provider_text)
        cdef int k
        for k in range(self.n_providers):
            if self.provider_sizes[k] == v.size and memcmp(
                    names + self.provider_starts[k], s + v.start, v.size) == 0:
                return self.provider_syms[k]
        return -1

    cdef bint _application_valid(self, const unsigned char* s, Value* f) noexcept:
        """An application's dates and residence are ones the lane reads as the model does."""
        cdef int y, mo, d
        cdef int64_t place, pref
        cdef Py_ssize_t i, start, size
        if not parse_day(s + f[F_CARD].start, f[F_CARD].size, &y, &mo, &d):
            return False
        if f[F_BIRTH].kind == V_TEXT and not parse_day(s + f[F_BIRTH].start, f[F_BIRTH].size,
                                                       &y, &mo, &d):
            return False
        if f[F_CHILDREN].kind == V_ARRAY:
            i = f[F_CHILDREN].start
            while True:
                i = next_text(s, i, f[F_CHILDREN].start + f[F_CHILDREN].size, &start, &size)
                if i < 0:
                    break
                if not parse_day(s + start, size, &y, &mo, &d):
                    return False
        return self._place(s, &f[F_RESIDENCE], &place, &pref)

    cdef int _fact(self, int kind, Moment* m, int64_t provider, int64_t place, int64_t pref,
                   Digest person, int64_t* fact) except -1:
        """:func:`build_fact` for an event of the lane's kinds."""
        memcpy(fact, self.table.blank, N_SLOTS * sizeof(int64_t))
        fact[S_TYPE] = self.type_symbols[kind]
        fact[S_DAY] = m.year * 10000 + m.month * 100 + m.day
        fact[S_PROVIDER] = provider
        fact[S_STORE_PLACE] = place
        fact[S_STORE_PREF] = pref
        return self._person_fact(person, m, fact)

    cdef int _claims(self, int kind, int64_t* fact, Moment* m, int64_t amount,
                     const unsigned char* s, Value* store, Claim* claims) except -2:
        """What each program the event concerns asks for it (Engine._claims); the number of
        claims, or -1 when a program is not the lane's to decide."""
        cdef Item[MAX_CLAIMS] programs
        cdef int n_programs, n_claims = 0, k
        cdef bint reads_store
        cdef VersionLane version
        cdef int64_t wanted
        n_programs = self.programs(fact, kind, programs, &reads_store)
        if n_programs < 0:
            return -1
        if reads_store and store != NULL and store.kind == V_TEXT:
            fact[S_STORE] = self.symbol(_ascii(s, store))
        for k in range(n_programs):
            if programs[k].code != NULL:  # one version: its lane read only if it claims
                if decide(programs[k].code, self.table, fact) >= 0:
                    continue
                version = <VersionLane>programs[k].only
            else:
                version = (<ProgramLane>programs[k].program).at(m.epoch_us)
                if decide(version.code, self.table, fact) >= 0:
                    continue
            if version.award == PREMIUM:
                # a premium is a share of a transaction: nothing for other events
                wanted = amount * version.rate // 10000 if amount > 0 else 0
            else:
                wanted = version.amount
            if wanted <= 0:
                continue
            claims[n_claims].lane_version = <PyObject*>version
            claims[n_claims].provider = fact[version.chosen_slot]
            claims[n_claims].points = wanted
            n_claims += 1
            if version.n_recent:  # most likely its claim plan: read while the rest is decided
                _prefetch_lines(version.recent[0], 3)
        return n_claims

    cdef list _apply_claims(self, Claim* claims, int n, Digest digest, char* key,
                            Py_ssize_t key_size, const unsigned char* s, Value* f, Moment* m,
                            bint keep):
        """Apply the claims as the store does; with ``keep``, the awards they paid."""
        cdef char[32] at
        cdef Py_ssize_t at_size
        cdef int k
        if n == 0:
            return None
        at_size = format_jst(m, at)
        awards = None
        for k in range(n):
            award = self._claim(&claims[k], digest, key, key_size, s, f, at, at_size, keep)
            if award is not None:
                if awards is None:
                    awards = []
                awards.append(award)
        return awards

    cdef bint _transaction(self, const unsigned char* s, Line* line, Moment* m, int kind,
                           int64_t provider, int64_t place, int64_t pref, char* key,
                           Py_ssize_t key_size, int64_t fp, Py_ssize_t index) except -1:
        cdef Value* f = line.fields
        cdef int64_t[N_SLOTS] fact
        cdef Claim[MAX_CLAIMS] claims
        cdef int n_claims = 0
        cdef int64_t amount = f[F_AMOUNT].number
        cdef int64_t paid_fp = 0
        if not self.intents:
            # where it is kept if it earns nothing (most do): start reading that slot now
            paid_fp = self._paid_fp(s, key, key_size, f)
            self.paid.prefetch(paid_fp)
        cdef Digest digest = self._digest_at(s, &f[F_PERSON])
        if digest is not None:
            # the rest of the digest, what a claim reads of the person (Digest.use): read
            # while the event is decided
            _prefetch_lines(<PyObject*>digest, 7)
            self._fact(kind, m, provider, place, pref, digest, fact)
            n_claims = self._claims(kind, fact, m, amount, s, &f[F_STORE], claims)
            if n_claims < 0:
                return False
        if self.intents:
            self._send(index, s, f, m, key, key_size, None, claims, n_claims)
            return True
        # decided: from here on the event is applied by the store's tables
        awards = self._apply_claims(claims, n_claims, digest, key, key_size, s, f, m, True)
        if awards is not None:
            # a transaction that earned points keeps them for its refunds; a payer is shared
            if digest.payer_provider != provider:
                digest.payer = interned(digest.person_id + "|" + _ascii(s, &f[F_PROVIDER]))
                digest.payer_provider = provider
            kept = tuple(awards)
            PyObject_GC_UnTrack(<PyObject*>kept)  # of Awards, which hold no references back
            self.tables.keep(PyUnicode_DecodeASCII(key, key_size, NULL), amount, kept,
                             digest.payer)
        elif self.tables.journal is None:
            self.tables.keep_plain(paid_fp, amount, None, None)
        else:
            self.tables.keep_plain(paid_fp, amount, PyUnicode_DecodeASCII(key, key_size, NULL),
                                   _ascii(s, &f[F_PERSON]) + "|" + _ascii(s, &f[F_PROVIDER]))
        self._applied_now(fp, key, key_size)
        return True

    cdef bint _person_event(self, const unsigned char* s, Line* line, Moment* m, int kind,
                            int64_t provider, char* key, Py_ssize_t key_size, int64_t fp,
                            Py_ssize_t index) except -1:
        """An application or a registration: the person changed (Engine._changed_person),
        then decided with the change."""
        cdef Value* f = line.fields
        cdef int64_t[N_SLOTS] fact
        cdef Claim[MAX_CLAIMS] claims
        cdef int n_claims
        cdef Digest digest
        person_id = _ascii(s, &f[F_PERSON])
        cdef PyObject* found = PyDict_GetItem(self.persons, person_id)
        person = <object>found if found != NULL else None
        at = datetime_new(m.year, m.month, m.day, m.hour, m.minute, m.second, m.micro, _JST)
        if kind == APPLICATION:
            changed = self._applied_person(s, f, m, person_id, person, at, index)
            if changed is None:
                return True  # refused
        else:
            changed = copied(person) if person is not None else new_person(person_id)
            what = self.health if kind == HEALTH else self.account
            first = changed.registrations.get(what)
            if first is None or m.epoch_us < datetime_epoch_us(first):
                changed.registrations[what] = at
        digest = self.digest(person_id, changed)
        self._fact(kind, m, provider, 0, 0, digest, fact)
        n_claims = self._claims(kind, fact, m, 0, s, NULL, claims)
        if n_claims < 0:
            return False
        if self.intents:
            self.persons[person_id] = changed
        else:
            self.tables.keep_person(person_id, changed, False)
        digest.epoch = self.epoch
        if self.intents:
            self._send(index, s, f, m, key, key_size, person_to_json(changed), claims,
                       n_claims)
            return True
        self._apply_claims(claims, n_claims, digest, key, key_size, s, f, m, False)
        self._applied_now(fp, key, key_size)
        return True

    cdef object _applied_person(self, const unsigned char* s, Value* f, Moment* m,
                                str person_id, object person, object at, Py_ssize_t index):
        """The person after a Mynapoint application, or None when it is refused."""
        cdef int phase = <int>f[F_PHASE].number, y, mo, d
        cdef Py_ssize_t i, start, size
        provider = _ascii(s, &f[F_PROVIDER])
        earlier = person.enrolments.get(phase) if person is not None else None
        if earlier is not None and earlier.provider != provider:
            self._refuse(index, Refusal.PROVIDER_ALREADY_CHOSEN,
                         {"phase": phase, "chosen": earlier.provider})
            return None
        changed = copied(person) if person is not None else new_person(person_id)
        if earlier is None or m.epoch_us < datetime_epoch_us(earlier.applied_at):
            # a repeat application (as for parts 2 and 3) keeps the first one's date
            parse_day(s + f[F_CARD].start, f[F_CARD].size, &y, &mo, &d)
            changed.enrolments[phase] = new_enrolment(provider, at, date_new(y, mo, d),
                                                   m.year * 10000 + m.month * 100 + m.day,
                                                   y * 10000 + mo * 100 + d)
        residence = _ascii(s, &f[F_RESIDENCE])
        residences = changed.residences
        if not residences:
            residences.append((at, residence))  # Person.move into an empty history
        elif len(residences) > 1 or residences[0][1] != residence:
            if changed.residence_at(at) != residence:
                changed.move(at, residence)
        if f[F_BIRTH].kind == V_TEXT:
            parse_day(s + f[F_BIRTH].start, f[F_BIRTH].size, &y, &mo, &d)
            changed.birth_date = date_new(y, mo, d)
        if f[F_CHILDREN].kind == V_ARRAY and f[F_CHILDREN].number > 0:
            children = []
            i = f[F_CHILDREN].start
            while True:
                i = next_text(s, i, f[F_CHILDREN].start + f[F_CHILDREN].size, &start, &size)
                if i < 0:
                    break
                parse_day(s + start, size, &y, &mo, &d)
                children.append(date_new(y, mo, d))
            changed.children = tuple(children)
        if f[F_HOUSEHOLD].kind == V_TEXT:
            changed.household = _ascii(s, &f[F_HOUSEHOLD])
        if f[F_PHASE1].kind == V_TRUE:
            changed.phase1_applicant = True
        return changed

    cdef object _claim(self, Claim* claim, Digest digest, char* key,
                       Py_ssize_t key_size, const unsigned char* s, Value* f, char* at,
                       Py_ssize_t at_size, bint keep):
        """One claim applied as the store applies it; with ``keep``, the :class:`Award` when
        it paid (a transaction's, for its refunds)."""
        cdef VersionLane version = <VersionLane>claim.lane_version
        cdef ClaimPlan plan = version.claim_plan(self, claim.provider)
        cdef int64_t points = claim.points, room
        cdef Counters counters = self.counters
        cdef Py_ssize_t[MAX_KEYS + 2] slots
        cdef int64_t[MAX_KEYS + 2] limits
        cdef int k, n, which
        if plan.bound is not counters:
            plan.bind(counters)
        digest.use(plan, plan.person_prefix,
                   plan.group_prefix if plan.has_group else None, plan.shared_keys,
                   digest.person_id)
        if plan.member_prefix is not None and not digest.member[0]:
            member = plan.member_prefix + digest.person_id
            if member not in self.members:
                if self.tables.full_admission(plan.admission_slots, plan.admission_limits,
                                              plan.n_admissions) >= 0:
                    return None  # full: the claim is refused
                self.tables.admit(member, plan.admission_slots, plan.n_admissions)
            digest.member[0] = True
        caps = digest.caps_a
        own = caps[0]
        group = caps[1] if plan.has_group else None
        if digest.own_slot[0] < 0:
            digest.own_slot[0] = counters.slot(own)
            if group is not None:
                digest.group_slot[0] = counters.slot(group)
        # the claim's caps in the template's order: the person's, the group's, the program's
        slots[0] = digest.own_slot[0]
        limits[0] = plan.person_limit
        n = 1
        if group is not None:
            slots[1] = digest.group_slot[0]
            limits[1] = plan.group_limit
            n = 2
        for k in range(plan.n_shared):
            slots[n] = <Py_ssize_t>plan.shared_caps[2 * k]
            limits[n] = plan.shared_caps[2 * k + 1]
            n += 1
        points = self.tables.clip(points, slots, limits, n, &which)
        if points <= 0:
            return None
        self.tables.count(slots, n, points, plan.totals_key)
        self.tables.line(True, key, key_size, <const char*>s + f[F_PERSON].start,
                         f[F_PERSON].size, plan.program_json, plan.version, points,
                         plan.provider_json, at, at_size, NULL, 0)
        if not keep:
            return None
        return new_award(plan.program, plan.version, points, plan.provider, caps)

    cdef int64_t _paid_fp(self, const unsigned char* s, char* key, Py_ssize_t key_size,
                          Value* f) noexcept:
        """The fingerprint of ``{transaction}|{person}|{provider}`` (memory_store._paid_key)."""
        cdef char[320] text
        cdef Py_ssize_t n = key_size
        memcpy(text, key, key_size)
        text[n] = b'|'
        n += 1
        memcpy(text + n, s + f[F_PERSON].start, f[F_PERSON].size)
        n += f[F_PERSON].size
        text[n] = b'|'
        n += 1
        memcpy(text + n, s + f[F_PROVIDER].start, f[F_PROVIDER].size)
        n += f[F_PROVIDER].size
        return fingerprint_bytes(text, n)

    cdef Digest digest(self, str person_id, object person):
        """The person's :class:`Digest`, made again when the store holds a new Person."""
        cdef Py_ssize_t size
        cdef const char* text = PyUnicode_AsUTF8AndSize(person_id, &size)
        cdef int64_t fp = fingerprint_bytes(text, size), index
        cdef Digest digest
        if self.digest_index.get_fp(fp, &index):
            digest = <Digest>PyList_GET_ITEM(self.digest_list, index)
            if digest.person is person:
                return digest
            if digest.person_id != person_id:  # two ids of one fingerprint: not kept
                return self._new_digest(person_id, person)
            older = digest
            digest = self._new_digest(person_id, person)
            digest.inherit(older)
            self.digest_list[index] = digest
            return digest
        digest = self._new_digest(person_id, person)
        self.digest_index.add_fp(fp, len(self.digest_list))
        self.digest_list.append(digest)
        return digest

    cdef Digest _digest_at(self, const unsigned char* s, Value* v):
        """The :class:`Digest` of the person whose id ``v`` is, or None when the store has no
        such person. Found by the id's fingerprint; only a digest that lost its epoch (see
        ``epoch``) is checked against the Person the store holds, looked up with the digest's
        own id string (no new string, its hash known)."""
        cdef int64_t fp = fingerprint_bytes(<const char*>s + v.start, v.size), index
        cdef Digest digest
        cdef PyObject* found
        if self.digest_index.get_fp(fp, &index):
            digest = <Digest>PyList_GET_ITEM(self.digest_list, index)
            if digest.has_id(<const char*>s + v.start, v.size):
                if digest.epoch == self.epoch:
                    return digest
                found = PyDict_GetItem(self.persons, digest.person_id)
                if found == NULL:
                    return None
                if <object>found is not digest.person:
                    digest = self.digest(digest.person_id, <object>found)
                digest.epoch = self.epoch
                return digest
        person_id = _ascii(s, v)
        found = PyDict_GetItem(self.persons, person_id)
        if found == NULL:
            return None
        digest = self.digest(person_id, <object>found)
        digest.epoch = self.epoch
        return digest

    cdef Digest _new_digest(self, str person_id, object person):
        """A digest of ``person``, the one the store holds under ``person_id``."""
        digest = Digest()
        digest.build(self.table, self.bases, person)
        digest.set_id(person_id)
        return digest

    cdef int _person_fact(self, Digest person, Moment* m, int64_t* fact) except -1:
        """The person's part of :func:`build_fact` at the event's time."""
        cdef int64_t at = m.epoch_us
        cdef int phase
        cdef Py_ssize_t n, k, index
        for phase in range(1, 3):
            if person.applied_us[phase] <= at:
                fact[S_CHOSEN1 + phase - 1] = person.chosen[phase]
                fact[S_BASIS1 + phase - 1] = person.basis[phase]
                fact[S_APPLIED1 + phase - 1] = person.applied_day[phase]
                fact[S_CARD] = person.card_day[phase]
        fact[S_PHASE1] = person.phase1
        if person.residence >= 0:
            fact[S_RESIDENCE] = person.residence
            fact[S_RESIDENCE_PREF] = person.residence_pref
        elif person.residence == MOVED:
            residences = person.person.residences
            n = len(residences)
            index = 0
            for k in range(n):
                if datetime_epoch_us(residences[k][0]) <= at:
                    index = k + 1
            self.table.residence(residences[index - 1 if index > 0 else 0][1],
                            &fact[S_RESIDENCE], &fact[S_RESIDENCE_PREF])
        if person.birth_year >= 0:
            fact[S_AGE] = m.year - person.birth_year - (
                1 if m.month * 100 + m.day < person.birth_day else 0)
        if person.registered:
            fact[S_HEALTH] = 1 if person.health_us <= at else 0
            fact[S_ACCOUNT] = 1 if person.account_us <= at else 0
        return 0

    cdef int _refund(self, const unsigned char* s, Line* line, Moment* m, char* key,
                     Py_ssize_t key_size, int64_t fp, Py_ssize_t index) except -1:
        """A refund, applied by the store's tables (:meth:`Tables.refund`); the lane writes
        the reversals' ledger lines."""
        cdef Value* f = line.fields
        cdef char[160] of
        cdef Py_ssize_t of_size = _join(of, s, &f[F_SOURCE], b'/', &f[F_TRANSACTION])
        cdef int64_t amount = f[F_AMOUNT].number, left = 0, whole = 0
        cdef char[32] at
        cdef Py_ssize_t at_size
        cdef Award award
        refund_of = PyUnicode_DecodeASCII(of, of_size, NULL)
        person = _ascii(s, &f[F_PERSON])
        reversals = []
        answer = self.tables.refund(refund_of, person + "|" + _ascii(s, &f[F_PROVIDER]),
                                    self._paid_fp(s, of, of_size, f), amount, reversals,
                                    &left, &whole)
        if answer == UNKNOWN:
            return self._refuse(index, Refusal.UNKNOWN_TRANSACTION,
                                {"transaction": refund_of, "person": person})
        if answer == EXCEEDS:
            return self._refuse(index, Refusal.REFUND_EXCEEDS_PAYMENT,
                                {"amount": amount, "left": left, "whole": whole})
        if reversals:
            at_size = format_jst(m, at)
            for award, share in reversals:
                self.tables.line(False, key, key_size, <const char*>s + f[F_PERSON].start,
                                 f[F_PERSON].size, _json_text(award.program), award.version,
                                 -share, _json_text(award.provider), at, at_size, of, of_size)
        self._applied_now(fp, key, key_size)
        return 0


cdef inline void _prefetch_lines(const void* address, int lines) noexcept:
    """Start reading the first ``lines`` cache lines at ``address`` into the cache."""
    cdef int k
    for k in range(lines):
        __builtin_prefetch(<const char*>address + 64 * k)


cdef inline Py_ssize_t _join(char* out, const unsigned char* s, Value* first, char glue,
                             Value* second) noexcept:
    """``first`` + glue + ``second`` into ``out`` (ids: 64 bytes each at most)."""
    memcpy(out, s + first.start, first.size)
    out[first.size] = glue
    memcpy(out + first.size + 1, s + second.start, second.size)
    return first.size + 1 + second.size


cdef inline str _ascii(const unsigned char* s, Value* v):
    return PyUnicode_DecodeASCII(<const char*>s + v.start, v.size, NULL)


cdef bytes _json_text(str text):
    """``text`` for a JSON string as it is: ids and program ids need no escape."""
    if not as_is(text):
        raise IntegrityError(f"{text!r} is not an id the ledger can write without escapes")
    return text.encode()


def tally(list reply, list claims) -> tuple[list[int], list[tuple[int, int, int, int]]]:
    """Read the Redis store's answer for a compact batch (its contract: redis_store.py):
    each intent's status (0 applied, 1 duplicate, 2 unknown transaction, 3 more than was paid,
    4 refused), and ``(intent, status, left, amount)`` for those neither applied nor
    duplicates."""
    cdef Py_ssize_t pos = 0, k, n = len(claims), size = len(reply)
    cdef int64_t status
    statuses = [0] * n
    others = []
    for k in range(n):
        if pos >= size:
            raise IntegrityError(f"the apply script answered {size} values, too few")
        status = reply[pos]
        pos += 1
        statuses[k] = status
        if status == 3:
            others.append((k, 3, reply[pos], reply[pos + 1]))
            pos += 2
        elif status == 0:
            pos += 1 + 2 * <Py_ssize_t>reply[pos] + 2 * <Py_ssize_t>claims[k]
        elif status != 1:
            others.append((k, status, 0, 0))
    if pos != size:
        raise IntegrityError(f"the apply script answered {size} values, expected {pos}")
    return statuses, others


def fresh(list ids, list values, dict read, object parse) -> dict:
    """The persons of ``ids`` from their stored JSON ``values`` (None: not stored): the one
    in ``read`` (id -> (JSON, Person)) when its JSON is the same, else ``parse(JSON)``, kept
    in ``read``."""
    cdef Py_ssize_t k
    cdef PyObject* known
    found = {}
    for k in range(len(ids)):
        value = values[k]
        if value is None:
            continue
        person_id = ids[k]
        known = PyDict_GetItem(read, person_id)
        if known == NULL or (<tuple>known)[0] != value:
            entry = (value, parse(value))
            read[person_id] = entry
            found[person_id] = entry[1]
        else:
            found[person_id] = (<tuple>known)[1]
    return found
