"""Sandbox runs (cards, transforms) taken from per-user queues in turn.

A plain arq queue is one line in arrival order: a user who queues twenty slow cards makes
everyone behind them wait for all twenty. Here each run is still an arq job (its record in
`arq:job:{id}`, so its id deduplicates, `cancelExecution` aborts it, the sweeper's "is the
job still there?" and arq's retries all work as before), but it waits in its user's own
list instead of arq's line:

- `{queue}:fair:user:{user}` lists the user's waiting runs in arrival order, each entry
  `"{reserve}:{job id}"` (`reserve`: the output bytes the run may hold, see below);
- `{queue}:fair:users` is the ring of users with waiting runs; a user joins it with their
  first waiting run, at the front (they have had no turn this round), and leaves it with
  their last;
- the job also sits in arq's sorted set with a score far in the future, so no arq poller
  takes it, while `zcard` (burst workers, health checks) still counts it as queued.

A worker with a free sandbox slot calls `take` (one Lua script, so any number of workers
share the ring without locks): the next user in the ring gets the turn and moves to the
back, their oldest run is claimed for this worker (arq's in-progress key, set here and not
by arq's poller, so no other worker can start it) and its score becomes now. The worker
then runs it through arq (`tilegraph.jobs.turns`). So a run waits for at most one run of
each other user with waiting work, and — since a user who starts waiting is served next —
a user arriving behind another's backlog waits only for a slot to free up: one run per slot.

Output bytes in flight: each taken run reserves its output cap (`reserve`) from its user's
budget until its worker releases it (after the result is stored and published); a user
whose reservations would pass the budget lets the turn go to the next user. A user with
nothing in flight may always start one run, so a run whose cap alone passes the budget
still runs, alone. Reservations carry a deadline, so a worker that died does not hold its
user's budget for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job

# A score no clock reaches: arq pollers only take jobs whose score has passed.
PARKED_SCORE = float(2**53 - 1)

_ENQUEUE = """
-- KEYS: job key, result key, arq queue, ring, user list
-- ARGV: job payload, expiry ms, job id, entry, user, parked score
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
if redis.call('RPUSH', KEYS[5], ARGV[4]) == 1 then
  -- The ring turns from its tail (RPOPLPUSH), so the tail is next.
  redis.call('RPUSH', KEYS[4], ARGV[5])
end
return 1
"""

_TAKE = """
-- KEYS: ring, arq queue
-- ARGV: key prefix, now ms, claim ms, budget bytes, job key prefix, in-progress key prefix
local ring, queue = KEYS[1], KEYS[2]
local prefix, now, claim_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local budget, job_prefix, progress_prefix = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local turns = redis.call('LLEN', ring)
for _ = 1, turns do
  -- The user at the tail gets the turn and moves to the head: the back of the round.
  local user = redis.call('RPOPLPUSH', ring, ring)
  if not user then return false end
  local waiting = prefix .. 'user:' .. user
  local held = prefix .. 'held:' .. user
  local total, count = 0, 0
  local entries = redis.call('HGETALL', held)
  for i = 1, #entries, 2 do
    local bytes, deadline = string.match(entries[i + 1], '^(%d+):(%d+)$')
    if tonumber(deadline) <= now then
      redis.call('HDEL', held, entries[i])
    else
      total = total + tonumber(bytes)
      count = count + 1
    end
  end
  local head = redis.call('LINDEX', waiting, 0)
  if not head then
    redis.call('LREM', ring, 1, user)
  else
    local bytes, job_id = string.match(head, '^(%d+):(.+)$')
    local reserve = math.min(tonumber(bytes), budget)
    if budget <= 0 or count == 0 or total + reserve <= budget then
      redis.call('LPOP', waiting)
      if redis.call('LLEN', waiting) == 0 then redis.call('LREM', ring, 1, user) end
      if redis.call('EXISTS', job_prefix .. job_id) == 0 then
        -- Expired or finished meanwhile: nothing to run.
        redis.call('ZREM', queue, job_id)
      elseif redis.call('SET', progress_prefix .. job_id, '1', 'PX', claim_ms, 'NX') then
        redis.call('ZADD', queue, now, job_id)
        redis.call('HSET', held, job_id, reserve .. ':' .. (now + claim_ms))
        redis.call('PEXPIRE', held, claim_ms)
        return {user, job_id, bytes}
      end
    end
  end
end
return false
"""


_HAND_BACK = """
-- KEYS: in-progress key, retry key, arq queue, ring, user list, user's held hash
-- ARGV: job id, entry, user, parked score
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
-- First in its user's line again, and the user next in the ring if they had left it.
if redis.call('LPUSH', KEYS[5], ARGV[2]) == 1 then redis.call('RPUSH', KEYS[4], ARGV[3]) end
return 1
"""


@dataclass(frozen=True)
class FairTurn:
    """Whose queue a run waits in, and the output bytes it may hold once taken."""

    user_id: str
    reserve_bytes: int = 0


@dataclass(frozen=True)
class TakenRun:
    user_id: str
    job_id: str
    score: int
    reserve_bytes: int = 0


class FairQueue:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.prefix = f"{queue_name}:fair:"
        self.ring = f"{self.prefix}users"
        self._enqueue = redis.register_script(_ENQUEUE)
        self._take = redis.register_script(_TAKE)
        self._hand_back = redis.register_script(_HAND_BACK)

    def waiting_key(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    def held_key(self, user_id: str) -> str:
        return f"{self.prefix}held:{user_id}"

    async def enqueue(self, turn: FairTurn, function: str, job_id: str, *args: Any) -> bool:
        """False when a job with this id is already queued, running or recently done (as
        arq's enqueue_job)."""
        payload = serialize_job(
            function, args, {}, None, int(time.time() * 1000), serializer=self.redis.job_serializer
        )
        added = await self._enqueue(
            keys=[
                job_key_prefix + job_id,
                result_key_prefix + job_id,
                self.queue_name,
                self.ring,
                self.waiting_key(turn.user_id),
            ],
            args=[
                payload,
                self.redis.expires_extra_ms,
                job_id,
                f"{max(0, turn.reserve_bytes)}:{job_id}",
                turn.user_id,
                PARKED_SCORE,
            ],
        )
        return bool(added)

    async def take(self, *, claim_seconds: float, budget_bytes: int) -> TakenRun | None:
        """The next user's oldest run, claimed for the caller; None when no user with
        waiting work may start one now."""
        now = int(time.time() * 1000)
        taken = await self._take(
            keys=[self.ring, self.queue_name],
            args=[
                self.prefix,
                now,
                int(claim_seconds * 1000),
                budget_bytes,
                job_key_prefix,
                in_progress_key_prefix,
            ],
        )
        if not taken:
            return None
        user, job_id, reserve = (
            part.decode() if isinstance(part, bytes) else str(part) for part in taken
        )
        return TakenRun(user, job_id, now, int(reserve))

    async def hand_back(self, run: TakenRun, retry_key: str) -> None:
        """A stopping worker returns a taken run unfinished: parked again at the front of
        its user's queue for any worker's next free slot, its try not counted."""
        await self._hand_back(
            keys=[
                in_progress_key_prefix + run.job_id,
                retry_key,
                self.queue_name,
                self.ring,
                self.waiting_key(run.user_id),
                self.held_key(run.user_id),
            ],
            args=[run.job_id, f"{run.reserve_bytes}:{run.job_id}", run.user_id, PARKED_SCORE],
        )

    async def release(self, run: TakenRun) -> None:
        """The run's output is stored and published: its bytes leave the user's budget."""
        await self.redis.hdel(self.held_key(run.user_id), run.job_id)  # type: ignore[misc]
