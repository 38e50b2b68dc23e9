"""The Redis store: the store contract (:mod:`pointengine.store.contract`) shared by many workers.

Every intent of a batch is applied by ONE Lua script call (``EVALSHA``, loaded again on
``NOSCRIPT``), with exactly the semantics of :class:`~pointengine.store.memory.MemoryStore`, to
the yen and in the same order. A script runs alone on the server, so each intent is atomic
against every other client. The script reads what it needs first, computes the whole batch
in Lua, then writes; a batch that fails validation in Python sends nothing.

Keys (all under ``prefix``, named in :class:`Keys` and nowhere else):

===================  ======  ===============================================================
``applied``          set     event keys applied
``counters``         hash    cap and admission key → count
``members``          set     member keys of persons admitted to a program
``transactions``     hash    transaction id → msgpack ``[amount, refunded, [award, ...]]``
                             (one that earned nothing: ``amount|refunded|payer``),
                             award = ``[program, version, points, provider, reversed, cap...]``
``persons``          hash    person id → compact JSON (:func:`person_to_json`)
``totals``           hash    JSON ``[program, provider]`` → net points
``tallies``          hash    tally key → sum
``seq``              string  the last ledger ``seq``
``ledger``           stream  one entry per ledger line, fields named as :class:`LedgerEntry`
``lease``            string  while an exclusive replay holds the store (its token; it
                             expires unless renewed): the script refuses every batch
===================  ======  ===============================================================

For Redis Cluster, give a prefix with a hash tag (``"{pe}:"``) so that every key is in one slot.

Arithmetic is integer-exact: Lua numbers are doubles, exact below 2**53. Every integer in an
intent must lie within ±(2**53 - 1), and for a transaction ``amount * points`` (the numerator of
a refund's share ``floor(points * refunded / amount)``) as well; the program's figures (points
up to 10**7, amounts up to 10**8) are far below. An intent outside these bounds raises
:class:`~pointengine.errors.IntegrityError` before anything is sent.

Redis failures raise :class:`~pointengine.errors.OperationalError`. If a call fails after the
server applied the batch (a lost reply), sending the batch again reports its intents as
duplicates: the state is right, the second report says so.

A store given a :class:`~pointengine.store.generation.Generation` (the workers' is) applies a
batch only while Redis holds the generation it knows, checked in the same script: once Redis
has lost the state, every batch raises :class:`~pointengine.errors.StateLost` and writes
nothing, rather than counting caps and budgets again from zero.

:func:`connect` makes the clients of the service and the workers: every command answers or fails
within a socket timeout, so that a frozen Redis is reported instead of waited for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import orjson
import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.retry import Retry

from pointengine.errors import IntegrityError, OperationalError, StateLost
from pointengine.model.events import in_jst
from pointengine.model.ledger import LedgerEntry
from pointengine.model.persons import Enrolment, Person
from pointengine.model.refusals import Refusal
from pointengine.store.contract import (
    Applied,
    Intent,
    Outcome,
    Store,
    refund_exceeds,
    unknown_transaction,
)
from pointengine.store.generation import Generation

__all__ = ["CONNECT_TIMEOUT", "MAX_EXACT", "TIMEOUT", "Keys", "RedisStore", "connect",
           "person_from_json", "person_to_json"]

TIMEOUT = 2.0
"""Seconds a command may take before :func:`connect`'s client gives up on it (the service's
default; the workers' is longer, :data:`pointengine.service.worker.WORKER_TIMEOUT`)."""
CONNECT_TIMEOUT = 1.0
"""Seconds a connection may take to open."""

MAX_EXACT = 2**53 - 1
"""The largest integer a Lua number (a double) holds exactly."""

_PAGE = 1000  # ledger entries per XRANGE, members per SMISMEMBER / HMGET in a pipeline


class Keys(NamedTuple):
    """Every Redis key of one store; the order is the script's KEYS order."""

    applied: str
    counters: str
    members: str
    transactions: str
    persons: str
    totals: str
    tallies: str
    seq: str
    ledger: str
    lease: str

    @classmethod
    def under(cls, prefix: str) -> Keys:
        """The keys of the store under ``prefix``."""
        return cls(*(prefix + name for name in cls._fields))


# apply_many: apply a batch of intents in order, each as the store contract says.
# KEYS[1] applied        set     event keys applied
# KEYS[2] counters       hash    cap / admission key -> count
# KEYS[3] members        set     member keys of admitted persons
# KEYS[4] transactions   hash    id -> cmsgpack {amount, refunded, {award...}, payer},
#                                award = {program, version, points, provider, reversed, cap...}
# KEYS[5] persons        hash    person id -> person JSON
# KEYS[6] totals         hash    JSON [program, provider] -> net points
# KEYS[7] tallies        hash    tally key -> sum
# KEYS[8] seq            string  last ledger seq
# KEYS[9] ledger         stream  one entry per ledger line
# KEYS[10] lease         string  set while an exclusive replay holds the store: refuse
# ARGV[1] the batch as JSON: [intent...], intent = [event, person, at, person JSON or '',
#   transaction or false, amount, refund of or false, refund amount, [[tally key, n]...],
#   [claim...], payer], claim = [program, version, points, provider, refundable, member key or '',
#   [[admission key, limit]...], [[cap key, limit]...]]
# ARGV[2] (optional; '' is none) the claim plans of a compact batch (the replay's lane writes
#   these): then
#   ARGV[1] is [compact intent...], compact intent = [event, person, at, person JSON or '',
#   transaction or false, amount, refund of or false, refund amount, payer,
#   [plan index, points, plan index, points...]], and plan = [program, version, provider,
#   member key prefix or '', [[admission key, limit]...], person cap prefix, person cap limit,
#   group cap prefix or '', group cap limit, [[cap key, limit]...]]: a claim's member key and
#   its first caps are the prefixes followed by the intent's person, its other caps the plan's
#   own, in that order; it is refundable and tallies nothing. A compact intent of 11 elements,
#   the last 1, is one the engine refused: it answers 1 if its event was applied, else 4.
# KEYS[11], KEYS[12] (optional) the generation marker and the record of a lost state
#   (pointengine.store.generation): the batch is applied only while the marker holds ARGV[3]
#   and no lost state is recorded; otherwise the answer is nil and nothing is written
# Returns a flat array, per intent: 1 (duplicate) | 2 (unknown transaction) | 4 (refused)
#   | 3, left, amount (refund exceeds payment)
#   | 0, R, R x (program, reversed points), C x (awarded, which), where which is 0 (not
#     clipped), k (clipped by the k-th cap, the last that clipped) or -k (the k-th admission
#     is full: refused).
# All integers are below 2^53 (checked by the caller), so Lua's doubles are exact. Reads come
# first, then the whole batch is computed, then written: an error before the writes changes
# nothing.
_APPLY_LUA = r"""
local K_APPLIED, K_COUNTERS, K_MEMBERS, K_TX = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_PERSONS, K_TOTALS, K_TALLIES, K_SEQ, K_LEDGER = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
if redis.call('EXISTS', KEYS[10]) == 1 then
  return redis.error_reply('LEASED the store is held by an exclusive replay ('
                           .. redis.call('GET', KEYS[10]) .. '); try again when it ends')
end
if KEYS[11] and (redis.call('EXISTS', KEYS[12]) == 1 or redis.call('GET', KEYS[11]) ~= ARGV[3]) then
  return false
end
local CHUNK = 500
local fmt, floor, unpack = string.format, math.floor, unpack
local batch = cjson.decode(ARGV[1])
if ARGV[2] and ARGV[2] ~= '' then
  -- a compact batch: each intent made the full one in place (its claims from the plans)
  local plans, none = cjson.decode(ARGV[2]), {}  -- none: read only
  for i = 1, #batch do
    local it = batch[i]
    local person, flat = it[2], it[10]
    local claims = none
    if #flat > 0 then
      claims = {}
      for c = 1, #flat, 2 do
        local pl = plans[flat[c] + 1]
        local caps = {{pl[6] .. person, pl[7]}}
        if pl[8] ~= '' then caps[2] = {pl[8] .. person, pl[9]} end
        local shared = pl[10]
        for k = 1, #shared do caps[#caps + 1] = shared[k] end
        local member = ''
        if pl[4] ~= '' then member = pl[4] .. person end
        claims[#claims + 1] = {pl[1], pl[2], flat[c + 1], pl[3], true, member, pl[5], caps}
      end
    end
    it[12] = it[11] == 1
    it[11] = it[9]
    it[9] = none
    it[10] = claims
  end
end

local function int(x) return fmt('%d', x) end
local NONE = {}  -- shared by what is read but never written (no claims, no reversals)

-- every event, member key and counter key of the batch, to read them in bulk
local events, member_keys, counter_keys, seen = {}, {}, {}, {{}, {}, {}}
local function collect(list, s, k) if not s[k] then s[k] = true; list[#list + 1] = k end end
local seen_events = seen[1]
for i = 1, #batch do
  local it = batch[i]
  local ev = it[1]
  if not seen_events[ev] then seen_events[ev] = true; events[#events + 1] = ev end
  local claims = it[10]
  for c = 1, #claims do
    local cl = claims[c]
    if cl[6] ~= '' then collect(member_keys, seen[2], cl[6]) end
    for _, a in ipairs(cl[7]) do collect(counter_keys, seen[3], a[1]) end
    for _, k in ipairs(cl[8]) do collect(counter_keys, seen[3], k[1]) end
  end
end

local function slices(list, fn)
  for s = 1, #list, CHUNK do
    local e = s + CHUNK - 1
    if e > #list then e = #list end
    fn(s, e)
  end
end
local function members_of(key, list)
  local found = {}
  slices(list, function(s, e)
    local r = redis.call('SMISMEMBER', key, unpack(list, s, e))
    for j = 1, #r do if r[j] == 1 then found[list[s + j - 1]] = true end end
  end)
  return found
end
local applied = members_of(K_APPLIED, events)
local members = members_of(K_MEMBERS, member_keys)
local counters = {}
slices(counter_keys, function(s, e)
  local r = redis.call('HMGET', K_COUNTERS, unpack(counter_keys, s, e))
  for j = 1, #r do counters[counter_keys[s + j - 1]] = tonumber(r[j]) or 0 end
end)

local dirty, dirty_order = {}, {}
local function get(k)
  local v = counters[k]
  if v == nil then v = tonumber(redis.call('HGET', K_COUNTERS, k)) or 0; counters[k] = v end
  return v
end
local function add(k, d)
  counters[k] = get(k) + d
  if not dirty[k] then dirty[k] = true; dirty_order[#dirty_order + 1] = k end
end

local txs, tx_dirty, tx_order = {}, {}, {}
local function get_tx(id)
  local t = txs[id]
  if t == nil then
    local raw = redis.call('HGET', K_TX, id)
    if not raw then
      t = false
    elseif raw:byte(1) <= 57 then  -- 'amount|refunded|payer': a transaction that earned nothing
      local a, r, p = raw:match('^(%d+)|(%d+)|(.*)$')
      t = {tonumber(a), tonumber(r), {}, p}
    else
      t = cmsgpack.unpack(raw)
    end
    txs[id] = t
  end
  return t
end
local function put_tx(id, t)
  txs[id] = t
  if not tx_dirty[id] then tx_dirty[id] = true; tx_order[#tx_order + 1] = id end
end

local function floordiv(a, b)
  if b < 0 then a, b = -a, -b end
  local q = floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

local seq = tonumber(redis.call('GET', K_SEQ)) or 0
local lines, totals, total_order, total_field = {}, {}, {}, {}
local function line(kind, ev, person, program, version, points, provider, at, tx)
  seq = seq + 1
  local by_provider = total_field[program]
  if by_provider == nil then by_provider = {}; total_field[program] = by_provider end
  local f = by_provider[provider]
  if f == nil then
    f = cjson.encode({program, provider})
    by_provider[provider] = f
    total_order[#total_order + 1] = f
    totals[f] = 0
  end
  totals[f] = totals[f] + points
  lines[#lines + 1] = {seq, kind, ev, person, program, version, points, provider, at, tx}
end

local out, o = {}, 0
local new_applied, new_members = {}, {}
local persons, person_order, tallies, tally_order = {}, {}, {}, {}
for i = 1, #batch do
  local it = batch[i]
  local ev, person, at = it[1], it[2], it[3]
  if applied[ev] then
    o = o + 1; out[o] = 1
  elseif it[12] then
    o = o + 1; out[o] = 4
  else
    local ok = true
    local rev_programs, rev_points = NONE, NONE
    local refund_of = it[7]
    if refund_of then
      rev_programs, rev_points = {}, {}
      local tx = get_tx(refund_of)
      if not tx or tx[4] ~= it[11] then
        o = o + 1; out[o] = 2; ok = false
      else
        local refunded = tx[2] + it[8]
        if refunded > tx[1] then
          out[o + 1] = 3; out[o + 2] = tx[1] - tx[2]; out[o + 3] = tx[1]; o = o + 3
          ok = false
        else
          tx[2] = refunded
          put_tx(refund_of, tx)
          local awards = tx[3]
          for k = 1, #awards do
            local aw = awards[k]
            local share = 0
            if tx[1] ~= 0 then share = floordiv(aw[3] * refunded, tx[1]) - aw[5] end
            if share > 0 then
              aw[5] = aw[5] + share
              for c = 6, #aw do add(aw[c], -share) end
              local p = aw[1]
              if rev_points[p] == nil then
                rev_programs[#rev_programs + 1] = p
                rev_points[p] = 0
              end
              rev_points[p] = rev_points[p] + share
              line('reversal', ev, person, p, aw[2], -share, aw[4], at, refund_of)
            end
          end
        end
      end
    end
    if ok then
      out[o + 1] = 0; out[o + 2] = #rev_programs; o = o + 2
      for k = 1, #rev_programs do
        out[o + 1] = rev_programs[k]; out[o + 2] = rev_points[rev_programs[k]]; o = o + 2
      end
      local awards = NONE  -- a table of its own from the first award
      local claims = it[10]
      for c = 1, #claims do
        local cl = claims[c]
        local points, member, admissions, caps = cl[3], cl[6], cl[7], cl[8]
        local refused = false
        if member ~= '' and not members[member] then
          local full = 0
          for a = 1, #admissions do
            if get(admissions[a][1]) >= admissions[a][2] then full = a; break end
          end
          if full > 0 then
            out[o + 1] = 0; out[o + 2] = -full; o = o + 2
            refused = true
          elseif points > 0 then
            members[member] = true
            new_members[#new_members + 1] = member
            for a = 1, #admissions do add(admissions[a][1], 1) end
          end
        end
        if not refused then
          local p, which = points, 0
          for k = 1, #caps do
            local room = caps[k][2] - get(caps[k][1])
            if room < p then
              if room > 0 then p = room else p = 0 end
              which = k
            end
          end
          out[o + 1] = p; out[o + 2] = which; o = o + 2
          if p > 0 then
            for k = 1, #caps do add(caps[k][1], p) end
            line('award', ev, person, cl[1], cl[2], p, cl[4], at, false)
            if cl[5] then
              local aw = {cl[1], cl[2], p, cl[4], 0}
              for k = 1, #caps do aw[5 + k] = caps[k][1] end
              if awards == NONE then awards = {} end
              awards[#awards + 1] = aw
            end
          end
        end
      end
      local tallied = it[9]
      for t = 1, #tallied do
        local key = tallied[t][1]
        local sum = tallies[key]
        if sum == nil then tally_order[#tally_order + 1] = key; sum = 0 end
        tallies[key] = sum + tallied[t][2]
      end
      if it[5] then put_tx(it[5], {it[6], 0, awards, it[11]}) end
      if it[4] ~= '' then
        if persons[person] == nil then person_order[#person_order + 1] = person end
        persons[person] = it[4]
      end
      applied[ev] = true
      new_applied[#new_applied + 1] = ev
    end
  end
end

-- writes
local function sadd(key, list)
  slices(list, function(s, e) redis.call('SADD', key, unpack(list, s, e)) end)
end
local function hset(key, order, value)
  local buf, b = {}, 0
  for k = 1, #order do
    buf[b + 1] = order[k]; buf[b + 2] = value(order[k]); b = b + 2
    if b >= 2 * CHUNK then redis.call('HSET', key, unpack(buf, 1, b)); b = 0 end
  end
  if b > 0 then redis.call('HSET', key, unpack(buf, 1, b)) end
end
sadd(K_APPLIED, new_applied)
sadd(K_MEMBERS, new_members)
hset(K_COUNTERS, dirty_order, function(k) return int(counters[k]) end)
hset(K_TX, tx_order, function(id)
  local t = txs[id]
  if #t[3] == 0 then return fmt('%d|%d|', t[1], t[2]) .. t[4] end
  return cmsgpack.pack(t)
end)
hset(K_PERSONS, person_order, function(id) return persons[id] end)
for k = 1, #total_order do
  redis.call('HINCRBY', K_TOTALS, total_order[k], int(totals[total_order[k]]))
end
for k = 1, #tally_order do
  redis.call('HINCRBY', K_TALLIES, tally_order[k], int(tallies[tally_order[k]]))
end
for k = 1, #lines do
  local l = lines[k]
  if l[10] then
    redis.call('XADD', K_LEDGER, '*', 'seq', int(l[1]), 'kind', l[2], 'event', l[3],
               'person', l[4], 'program', l[5], 'version', int(l[6]), 'points', int(l[7]),
               'provider', l[8], 'at', l[9], 'transaction', l[10])
  else
    redis.call('XADD', K_LEDGER, '*', 'seq', int(l[1]), 'kind', l[2], 'event', l[3],
               'person', l[4], 'program', l[5], 'version', int(l[6]), 'points', int(l[7]),
               'provider', l[8], 'at', l[9])
  end
end
if #lines > 0 then redis.call('SET', K_SEQ, int(seq)) end
return out
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _exact(value: int, what: str, intent: Intent) -> int:
    if not -MAX_EXACT <= value <= MAX_EXACT:
        raise IntegrityError(f"{what} {value} of event {intent.event!r} is beyond 2**53 - 1, "
                             "which the Redis store cannot count exactly")
    return value


def _encode(intent: Intent) -> list[Any]:
    """One intent as the script reads it (see the script's ARGV[1] contract)."""
    has_tx = intent.transaction is not None
    amount = _exact(intent.amount, "amount", intent)
    claims = []
    for c in intent.claims:
        points = _exact(c.points, "points", intent)
        if has_tx and c.refundable:
            _exact(points * amount, "amount × points", intent)
        claims.append((c.program, _exact(c.version, "version", intent), points, c.provider,
                       c.refundable, c.member_key,
                       [(a.key, _exact(a.limit, "limit", intent)) for a in c.admissions],
                       [(k.key, _exact(k.limit, "limit", intent)) for k in c.caps]))
    return [intent.event, intent.person, intent.at,
            "" if intent.person_state is None else person_to_json(intent.person_state).decode(),
            intent.transaction if has_tx else False, amount,
            False if intent.refund_of is None else intent.refund_of,
            _exact(intent.refund_amount, "refund amount", intent),
            [(key, _exact(n, "tally", intent)) for key, n in intent.tallies], claims,
            intent.payer]


def _decode(intents: Sequence[Intent], reply: Sequence[Any]) -> list[Applied]:
    """Build the :class:`Applied` of each intent from the script's flat reply."""
    results: list[Applied] = []
    pos = 0
    for intent in intents:
        status = reply[pos]
        pos += 1
        if status == 1:
            results.append(Applied.refused(intent.event, Refusal.DUPLICATE))
            continue
        if status == 2:
            results.append(unknown_transaction(intent))
            continue
        if status == 3:
            left, amount = reply[pos], reply[pos + 1]
            pos += 2
            results.append(refund_exceeds(intent, left, amount))
            continue
        result = Applied(intent.event, "applied")
        for _ in range(reply[pos]):
            result.reversed[_text(reply[pos + 1])] = reply[pos + 2]
            pos += 2
        pos += 1
        for claim in intent.claims:
            awarded, which = reply[pos], reply[pos + 1]
            pos += 2
            label = (None if which == 0 else claim.caps[which - 1].label if which > 0
                     else claim.admissions[-which - 1].label)
            result.outcomes.append(
                Outcome(claim.program, claim.version, claim.points, awarded, label))
        results.append(result)
    if pos != len(reply):
        raise IntegrityError(f"the apply script answered {len(reply)} values, expected {pos}")
    return results


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Translate redis-py errors into :class:`OperationalError`."""
    try:
        yield
    except redis.RedisError as exc:
        raise OperationalError(f"Redis failed to {what}: {exc}") from exc


class RedisStore(Store):
    """The store contract on Redis: one Lua script call per batch, every key under ``prefix``.

    ``client`` may decode responses or not. The store owns it: :meth:`close` closes it.
    Batches longer than ``max_batch`` intents are sent as several script calls (each intent
    is atomic either way; a long script blocks the server for the others meanwhile).
    With ``generation`` (its prefix the store's), every script call applies only while Redis
    holds the generation it knows, and raises :class:`~pointengine.errors.StateLost` instead.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "pe:",
                 max_batch: int = 5000, generation: Generation | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.client = client
        self.prefix = prefix
        self.keys = Keys.under(prefix)
        self.max_batch = max_batch
        self.generation = generation
        self._key_list = list(self.keys)
        self._apply = client.register_script(_APPLY_LUA)

    # -- reads -------------------------------------------------------------------------------

    def persons(self, ids: Iterable[str]) -> dict[str, Person]:
        """The stored persons among ``ids`` (one round trip: HMGETs in one pipeline)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        raw = self._pipelined("read persons", wanted,
                              lambda pipe, page: pipe.hmget(self.keys.persons, page))
        return {i: person_from_json(r) for i, r in zip(wanted, raw, strict=True) if r is not None}

    def applied(self, events: Iterable[str]) -> set[str]:
        """The event keys applied before (one round trip: SMISMEMBERs in one pipeline)."""
        wanted = list(dict.fromkeys(events))
        if not wanted:
            return set()
        found = self._pipelined("read applied events", wanted,
                                lambda pipe, page: pipe.smismember(self.keys.applied, page))
        return {e for e, hit in zip(wanted, found, strict=True) if hit}

    def _pipelined(self, what: str, members: list[str],
                   queue: Callable[[Pipeline, list[str]], object]) -> list[Any]:
        """``queue`` a command per page of ``members``; send them as one pipeline."""
        with _translated(what):
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(members), _PAGE):
                queue(pipe, members[start:start + _PAGE])
            return [value for page in pipe.execute() for value in page]

    def counter(self, key: str) -> int:
        """A cap or admission counter (0 if never touched)."""
        with _translated("read a counter"):
            value = self.client.hget(self.keys.counters, key)
        return int(value) if value is not None else 0

    def totals(self) -> dict[tuple[str, str], int]:
        """Net points per (program, provider)."""
        with _translated("read totals"):
            raw = self.client.hgetall(self.keys.totals)
        return _totals(raw)

    def snapshot(self) -> tuple[dict[tuple[str, str], int], str | None]:
        """The totals and the ID of the last ledger line (None: no line), read in one
        ``MULTI``: a batch writes both in one script, so the ledger up to that ID (``ledger(
        end=...)``) sums to exactly these totals while workers go on applying."""
        with _translated("read totals and the ledger's end"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(self.keys.totals)
            pipe.xrevrange(self.keys.ledger, "+", "-", count=1)
            raw, last = pipe.execute()
        return _totals(raw), _text(last[0][0]) if last else None

    def tallies(self, prefix: str) -> dict[str, int]:
        """Every tally whose key starts with ``prefix`` (HSCAN of the tallies hash)."""
        pattern = "".join("\\" + c if c in "\\*?[]" else c for c in prefix) + "*"
        n = len(prefix)
        with _translated("read tallies"):
            return {_text(k)[n:]: int(v) for k, v in
                    self.client.hscan_iter(self.keys.tallies, match=pattern, count=_PAGE)}

    def ledger(self, *, page: int = _PAGE, end: str = "+") -> Iterator[LedgerEntry]:
        """Every ledger line up to the entry ID ``end``, in order (XRANGE, ``page`` entries
        per round trip)."""
        start = "-"
        while True:
            with _translated("read the ledger"):
                rows: list[Any] = self.client.xrange(self.keys.ledger, start, end,
                                                     count=page) or []
            for _, fields in rows:
                yield _entry(fields)
            if len(rows) < page:
                return
            start = "(" + _text(rows[-1][0])

    # -- writes ------------------------------------------------------------------------------

    def apply_many(self, intents: Sequence[Intent]) -> list[Applied]:
        """Apply each intent in order, atomically: one script call per ``max_batch`` intents."""
        encoded = [orjson.dumps([_encode(i) for i in intents[start:start + self.max_batch]])
                   for start in range(0, len(intents), self.max_batch)]
        results: list[Applied] = []
        for index, blob in enumerate(encoded):
            batch = intents[index * self.max_batch:(index + 1) * self.max_batch]
            generation = self.generation
            with _translated("apply a batch"):
                if generation is None:
                    reply = self._apply(keys=self._key_list, args=[blob])
                else:
                    marker = generation.keys
                    reply = self._apply(keys=[*self._key_list, marker.marker, marker.lost],
                                        args=[blob, "", generation.expected()])
                    if reply is None:
                        # Gone or replaced: the check says which and records it. Either way
                        # this batch was not applied and must not pass for applied.
                        generation.check()
                        raise StateLost("the store's generation changed before the batch was "
                                        "applied; nothing of it was")
            results.extend(_decode(batch, reply))
        return results

    def flush(self) -> None:
        """Delete every key of this store (and nothing else)."""
        with _translated("flush the store"):
            self.client.delete(*self.keys)

    def close(self) -> None:
        """Close the client's connections."""
        with _translated("close the connection"):
            self.client.close()


def connect(url: str, *, timeout: float = TIMEOUT,
            connect_timeout: float = CONNECT_TIMEOUT) -> redis.Redis:
    """A client of the Redis at ``url`` on which every command answers or fails (a
    :class:`redis.TimeoutError`) within ``timeout`` seconds, and a connection opens within
    ``connect_timeout``: a frozen Redis is then an error to report, not a wait without end.

    A command is sent again once, at once, only when its connection turns out closed (Redis
    restarted, an idle connection dropped); a timed-out one is not, so the time a command
    takes stays bounded by about ``timeout``. A blocking read (``XREADGROUP BLOCK``) must
    block for less than ``timeout``.
    """
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))


def _totals(raw: dict[Any, Any]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for field, value in raw.items():
        program, provider = orjson.loads(field)
        totals[(program, provider)] = int(value)
    return totals


def _entry(fields: dict[Any, Any]) -> LedgerEntry:
    f = {_text(k): _text(v) for k, v in fields.items()}
    kind = f["kind"]
    if kind not in ("award", "reversal"):
        raise IntegrityError(f"ledger line of unknown kind {kind!r}")
    return LedgerEntry(int(f["seq"]), "award" if kind == "award" else "reversal", f["event"],
                       f["person"], f["program"], int(f["version"]), int(f["points"]),
                       f["provider"], f["at"], f.get("transaction"))


# -- persons ---------------------------------------------------------------------------------

def person_to_json(person: Person) -> bytes:
    """A person as compact JSON; empty and default fields are left out.

    ``{"i": id, "e": [[phase, provider, applied_at, card_applied_on]...], "r": [[at, code]...],
    "g": {what: at}, "b": birth_date, "c": [child birth dates], "h": household, "p": true}``
    with RFC 3339 datetimes (their UTC offset kept) and ISO dates.
    """
    doc: dict[str, Any] = {"i": person.id}
    if person.enrolments:
        doc["e"] = [[phase, e.provider, e.applied_at, e.card_applied_on]
                    for phase, e in person.enrolments.items()]
    if person.residences:
        doc["r"] = person.residences
    if person.registrations:
        doc["g"] = person.registrations
    if person.birth_date is not None:
        doc["b"] = person.birth_date
    if person.children:
        doc["c"] = person.children
    if person.household:
        doc["h"] = person.household
    if person.phase1_applicant:
        doc["p"] = True
    return orjson.dumps(doc)


def person_from_json(raw: bytes | str) -> Person:
    """The person written by :func:`person_to_json` (the same instants, held in JST)."""
    doc = orjson.loads(raw)
    def when(text: str) -> dt.datetime:
        return in_jst(dt.datetime.fromisoformat(text))

    day: Callable[[str], dt.date] = dt.date.fromisoformat
    return Person(
        id=doc["i"],
        enrolments={int(phase): Enrolment(provider, when(at), day(on))
                    for phase, provider, at, on in doc.get("e", ())},
        residences=[(when(at), code) for at, code in doc.get("r", ())],
        registrations={what: when(at) for what, at in doc.get("g", {}).items()},
        birth_date=day(doc["b"]) if "b" in doc else None,
        children=tuple(day(c) for c in doc.get("c", ())),
        household=doc.get("h"),
        phase1_applicant=bool(doc.get("p", False)),
    )
