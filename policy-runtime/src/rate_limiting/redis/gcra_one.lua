-- A check of one GCRA quota, the common case, in a script of that quota's
-- own: the store writes the quota's interval and burst into the line below
-- (see script.rs), so that the server reads no argument for the quota.
-- What this script does not decide, it leaves to gcra.lua, which shares its
-- arithmetic and its state (see there).
--
-- KEYS[1]  the client's state in its scope: nothing, or the bare time (the
--          theoretical arrival time, TAT) in microseconds on the server's
--          clock, in decimal.
-- ARGV[1]  the cost (how many requests the check counts as), 1 when left
--          out.
--
-- A request of cost c is admitted when, after adding c * interval to
-- max(TAT, now), the TAT is at most burst * interval ahead of now. A TAT
-- further ahead than a full burst can only come from a clock that went back
-- (or a quota that changed): it is capped there, so that a client waits at
-- most one interval past a full burst.
--
-- Reply: an integer d. d > 0: admitted, and the client's TAT is now d µs
-- ahead of now (reset_after_us = d); d <= 0: refused, the TAT being -d µs
-- ahead (reset_after_us = -d). The rest follows from the quota: remaining =
-- floor((interval * burst - d) / interval) when admitted, retry_after_us =
-- -d + cost * interval - interval * burst when refused.
-- Or the status GENERAL, for a state this script does not read (fields of
-- several quotas, a wrong type, anything that is not a time in range) or a
-- cost below 1: the store then asks gcra.lua, which decides or says what is
-- wrong. Nothing is written before that reply.
--
-- Cost: every step here is one the server pays on most checks, so there is
-- as little as a GCRA allows: the stored time read with one tonumber
-- (cheaper than a pattern match, though it converts twice), arithmetic on
-- the clock's decimal strings (which converts each once), and times written
-- with string.format('%d') (exact for every time here, and far cheaper than
-- '%.0f').

local INTERVAL, BURST = nil, nil

-- Times stay below 2^53 so that they are exact in Lua's doubles.
local MAX_TIME = 9e15

local cost = 1
if ARGV[1] then
  cost = tonumber(ARGV[1])
end
local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]
local tat = now
-- nil when there is no state; an error table for a wrong type, whose
-- tonumber is nil, as that of fields is.
local raw = redis.pcall('GET', KEYS[1])
if raw then
  tat = tonumber(raw)
end
-- NaN fails every comparison.
if not (tat and tat >= 0 and tat < MAX_TIME and cost and cost >= 1) then
  return redis.status_reply('GENERAL')
end

local horizon = now + INTERVAL * BURST
local start = tat
if start < now then
  start = now
elseif start > horizon then
  start = horizon
end
local next_tat = start + cost * INTERVAL
if next_tat > horizon then
  return now - start
end
-- next_tat > now: '%d' of (µs + 999) / 1000 is the ceiling in ms.
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX',
  string.format('%d', (next_tat - now + 999) / 1000))
return next_tat - now
