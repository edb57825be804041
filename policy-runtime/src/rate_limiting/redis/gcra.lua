-- One rate-limit operation, atomic on the server. "check" decides every
-- quota of every check of one request and counts the request only if all of
-- them admit it (all or nothing); "peek" reports without counting; "reset"
-- forgets a client's state in a scope.
--
-- KEYS[j]  the state of check j's client in its scope, a string of times
--          in microseconds on the server's clock. For a check of one GCRA
--          quota (the common case) it is the bare time, the theoretical
--          arrival time (TAT), in decimal. For any other check it is
--          "field=time;field=time", with a field per quota that still holds
--          something:
--          - "g:<interval>:<burst>" (GCRA): the theoretical arrival time;
--          - "s:<period>:<count>" (strict): when its log empties, i.e. a
--            period after the newest admission. The log itself is a sorted
--            set of admission times at "<state key>:<field>".
--          - "w:<period>:<count>" (sliding window counter): not a time but
--            "<window>,<previous>,<current>": the fixed window of the newest
--            admission (floor(time / period)) and the counts of the window
--            before it and of it. It is kept until both have aged out, the
--            end of the window after it.
--
-- ARGV[1]  "check", "peek", "refund" or "reset". A check of one GCRA quota
--          usually runs gcra_one.lua instead, the same decision on the same
--          state with the quota written into the script; it comes here for
--          a state it does not read.
--          For "reset", KEYS[1] is the state key and there are no other
--          arguments. Otherwise, per check j in KEYS order: its cost (at
--          least 1) and its number of quotas, then four arguments per quota:
--   kind   "gcra", "strict" or "sliding"
--   field  the quota's field (above): its kind and every parameter that
--          shapes its state, so a changed quota starts afresh
--          A check of one GCRA quota has no field in its state (here and
--          in gcra_one.lua): when its quota changes, the client's time
--          carries over, capped at the new burst as after a clock step
--          (below), which never admits more than starting afresh would. A check that finds the other form
--          (its scope changed between one GCRA quota and anything else)
--          starts afresh.
--   a, b   gcra: emission interval (period / count) and burst;
--          strict and sliding: period and count
--          All numbers are integers in decimal.
--
-- The clock is the server's TIME, so every instance agrees on it.
--
-- GCRA: a request of cost c is admitted when, after adding c * interval to
-- max(TAT, now), the TAT is at most burst * interval ahead of now: a burst
-- of `burst`, then one request per interval.
-- Strict: a request of cost c is admitted when at most count - c admissions
-- fall in the last period: never more than count in any window. An
-- admission dated after now (written before the clock went back) counts as
-- made now, so a client waits at most one period, as with GCRA.
-- Sliding: a request of cost c is admitted when floor(previous * (period -
-- elapsed) / period) + current + c <= count, elapsed being the time since
-- the current fixed window began: the previous window's count weighted by
-- how much of it is still in the last period (the arithmetic of the
-- in-memory store, exact while previous * period stays below 2^53 µs).
--
-- "refund" gives back requests that a check counted, for a limit that
-- counts only some responses: per check, its cost leaves every quota (a
-- GCRA time moves back cost intervals, a strict log loses its newest cost
-- entries, a sliding counter loses cost from its newest window first). Its
-- reply is 0.
--
-- Reply: nil for a peek at a client with no state, the number of
-- keys deleted for a reset, 0 for a refund, else
--   { allowed (1 or 0), check (1-based), quota (1-based), remaining,
--     reset_after_us, retry_after_us }
-- On a refusal the decisive quota is the one that makes the client wait
-- longest, so that a retry after retry_after_us can succeed; otherwise the
-- quota with the fewest requests left (the first one on a tie).
--
-- Errors start with POLICYDATA when a key holds data this script did not
-- write, and with POLICYARGS when the arguments are malformed.

-- Times stay below 2^53 so that they are exact in Lua's doubles.
local MAX_TIME = 9e15

local ARGS_PER_QUOTA = 4

local op = ARGV[1]
local args = ARGV
local peek = op == 'peek'
if op ~= 'check' and op ~= 'reset' and op ~= 'refund' and not peek then
  return redis.error_reply('POLICYARGS the first argument must be "check", "peek", "refund" or "reset"')
end

local function not_ours(key, what)
  return redis.error_reply('POLICYDATA key ' .. key .. ' ' .. what ..
    '; delete it and it is recreated on the next request')
end

local function type_of(key)
  local kind = redis.call('TYPE', key)
  if type(kind) == 'table' then
    kind = kind.ok
  end
  return tostring(kind)
end

local function valid_time(text)
  local value = tonumber(text)
  -- Rejects text, NaN (which fails every comparison) and infinities.
  if value and value >= 0 and value < MAX_TIME then
    return value
  end
  return nil
end

-- A sliding counter's value, { window, previous, current, period }, or nil.
local function sliding_value(field, value)
  local period = tonumber(string.match(field, '^w:(%d+):%d+$') or '')
  local window, previous, current = string.match(value, '^(%d+),(%d+),(%d+)$')
  if period and period >= 1 and window then
    local parsed = { tonumber(window), tonumber(previous), tonumber(current), period }
    if (parsed[1] + 2) * period < MAX_TIME then
      return parsed
    end
  end
  return nil
end

-- The field of a bare time in a parsed state: no quota's field is empty.
local BARE = ''

-- Reads a state string into field -> time (a sliding counter's field ->
-- its value; a bare time's field is BARE), or returns nil and an error
-- reply.
local function parse(key, raw)
  if tonumber(raw) then
    local time = valid_time(raw)
    if time == nil then
      return nil, not_ours(key, 'holds a time out of range')
    end
    return { [BARE] = time }
  end
  local state, parsed = {}, 0
  for field, value in string.gmatch(raw, '([^;=]+)=([^;=]*)') do
    parsed = parsed + #field + #value + 2
    if string.sub(field, 1, 2) == 'w:' then
      state[field] = sliding_value(field, value)
    else
      state[field] = valid_time(value)
    end
    if state[field] == nil then
      return nil, not_ours(key, 'holds a field ' .. field .. ' that is not a time')
    end
  end
  if parsed ~= #raw + 1 then
    return nil, not_ours(key, 'holds a string that is not a rate-limit state')
  end
  return state
end

-- Writes a state back: only the fields still ahead of now (a quota without
-- one behaves as for a new client), expiring when the last of them is
-- reached; a state left with none is deleted. A bare time is the state's
-- only field.
local function save(key, state, now)
  local parts, last = {}, now
  for field, value in pairs(state) do
    local ends, text = value, nil
    if type(value) == 'table' then
      ends = (value[1] + 2) * value[4]
      text = string.format('%d,%d,%d', value[1], value[2], value[3])
    else
      text = string.format('%d', value)
    end
    if ends > now then
      if field == BARE then
        parts[#parts + 1] = text
      else
        parts[#parts + 1] = field .. '=' .. text
      end
      if ends > last then
        last = ends
      end
    end
  end
  if #parts == 0 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, table.concat(parts, ';'), 'PX', math.ceil((last - now) / 1000))
  end
end

-- A sliding counter's previous and current counts in `window`.
local function sliding_counts(value, window)
  if value == nil then
    return 0, 0
  end
  if value[1] >= window then
    -- The same window, or a clock that went back: as stored.
    return value[2], value[3]
  elseif value[1] + 1 == window then
    return value[3], 0
  end
  return 0, 0
end

-- How far into a window the previous one's `previous` requests weigh at
-- most `room`.
local function earliest(previous, room, period)
  if previous == 0 then
    return 0
  end
  local most_left = math.floor(((room + 1) * period - 1) / previous)
  return math.max(period - most_left, 0)
end

if op == 'refund' then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local arg = 2
  for check = 1, #KEYS do
    local key = KEYS[check]
    local cost = tonumber(args[arg])
    local n = tonumber(args[arg + 1])
    arg = arg + 2
    if cost == nil or cost < 1 or n == nil or n < 1 then
      return redis.error_reply('POLICYARGS bad cost or quota count for check ' .. check)
    end
    local raw = redis.pcall('GET', key)
    if type(raw) == 'table' and raw.err then
      return not_ours(key, 'holds a ' .. type_of(key) .. ', not a rate-limit state')
    end
    local state = {}
    if raw then
      local failure
      state, failure = parse(key, raw)
      if state == nil then
        return failure
      end
    end
    -- A check of one GCRA quota keeps the bare time, any other the fields.
    local single = n == 1 and args[arg] == 'gcra'
    if not single then
      state[BARE] = nil
    end
    local changed = false
    for quota = 1, n do
      local kind, field = args[arg], args[arg + 1]
      local a = tonumber(args[arg + 2])
      arg = arg + ARGS_PER_QUOTA
      if field == nil or a == nil or a < 1 then
        return redis.error_reply('POLICYARGS bad parameters for quota ' .. quota .. ' of check ' .. check)
      end
      if single then
        field = BARE
      end
      local value = state[field]
      if kind == 'gcra' then
        if value then
          state[field] = value - cost * a
          changed = true
        end
      elseif kind == 'strict' then
        local log = key .. ':' .. field
        local newest = redis.pcall('ZREVRANGE', log, 0, cost - 1)
        if type(newest) == 'table' and newest.err then
          return not_ours(log, 'holds a ' .. type_of(log) .. ', not a rate-limit log')
        end
        if #newest > 0 then
          redis.call('ZREM', log, unpack(newest))
        end
      elseif kind == 'sliding' then
        if value then
          local from_current = math.min(value[3], cost)
          value[3] = value[3] - from_current
          value[2] = math.max(value[2] - (cost - from_current), 0)
          changed = true
        end
      else
        return redis.error_reply('POLICYARGS unknown quota kind ' .. tostring(kind))
      end
    end
    if changed then
      save(key, state, now)
    end
  end
  return 0
end

if op == 'reset' then
  local key = KEYS[1]
  local raw = redis.pcall('GET', key)
  local deleted = 0
  if type(raw) == 'string' then
    local state = parse(key, raw)
    for field in pairs(state or {}) do
      if string.sub(field, 1, 2) == 's:' then
        deleted = deleted + redis.call('DEL', key .. ':' .. field)
      end
    end
  end
  return deleted + redis.call('DEL', key)
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

-- The state of each key, read once (field -> time), and the keys this
-- request changes. Strict logs: admissions in the window as stored, and how
-- many this request adds (all at `now`), by log key.
local states = {}
local dirty = {}
local found_any = false
local log_live = {}
local log_added = {}
local log_period = {}

local allowed = true
local best_check, best_quota, best_remaining, best_reset, longest_wait = 0, 0, 0, 0, -1

local arg = 2
for check = 1, #KEYS do
  local key = KEYS[check]
  local cost = tonumber(args[arg])
  local n = tonumber(args[arg + 1])
  arg = arg + 2
  if cost == nil or cost < 1 or n == nil or n < 1 then
    return redis.error_reply('POLICYARGS bad cost or quota count for check ' .. check)
  end
  if peek then
    cost = 0
  end

  local state = states[key]
  if state == nil then
    local raw = redis.pcall('GET', key)
    if type(raw) == 'table' and raw.err then
      return not_ours(key, 'holds a ' .. type_of(key) .. ', not a rate-limit state')
    end
    state = {}
    if raw then
      found_any = true
      local failure
      state, failure = parse(key, raw)
      if state == nil then
        return failure
      end
    end
    states[key] = state
  end
  -- A check of one GCRA quota keeps the bare time, any other the fields.
  local single = n == 1 and args[arg] == 'gcra'

  -- Judge every quota of this check against the state before it; what it
  -- changes applies once the whole check is judged.
  local updates = {}
  for quota = 1, n do
    local kind, field = args[arg], args[arg + 1]
    local a, b = tonumber(args[arg + 2]), tonumber(args[arg + 3])
    arg = arg + ARGS_PER_QUOTA
    if field == nil or a == nil or a < 1 or b == nil or b < 1 then
      return redis.error_reply('POLICYARGS bad parameters for quota ' .. quota .. ' of check ' .. check)
    end
    if single then
      field = BARE
    end

    local admit, remaining, reset, wait
    if kind == 'gcra' then
      local capacity = a * b
      -- A TAT further ahead than a full burst can only come from a clock
      -- that went back: capped so that a client waits at most one period.
      local start = math.min(math.max(state[field] or now, now), now + capacity)
      local next_tat = start + cost * a
      local horizon = now + capacity
      if next_tat > horizon then
        admit, wait, reset = false, next_tat - horizon, start - now
      else
        admit, remaining, reset = true, math.floor((horizon - next_tat) / a), next_tat - now
        updates[#updates + 1] = field
        updates[#updates + 1] = next_tat
      end
    elseif kind == 'strict' then
      local log = key .. ':' .. field
      -- Admissions at or before now - period have left the window.
      local oldest_live = string.format('(%d', now - a)
      if log_live[log] == nil then
        local live = redis.pcall('ZCOUNT', log, oldest_live, '+inf')
        if type(live) == 'table' and live.err then
          return not_ours(log, 'holds a ' .. type_of(log) .. ', not a rate-limit log')
        end
        if live > 0 then
          found_any = true
          -- Admissions dated after now come from a clock that went back
          -- (or a failover to a server whose clock is behind): they count
          -- as made now. A check rewrites them so, so that they leave the
          -- window a period from now; a peek only reads them so.
          local newest = redis.call('ZREVRANGE', log, 0, 0, 'WITHSCORES')
          if not peek and tonumber(newest[2]) > now then
            local after_now = string.format('(%d', now)
            local ahead = redis.call('ZCOUNT', log, after_now, '+inf')
            redis.call('ZREMRANGEBYSCORE', log, after_now, '+inf')
            -- More than count of them would refuse as well as count.
            local keep = math.min(ahead, b)
            local at = string.format('%d', now)
            local members = {}
            for i = 1, keep do
              members[#members + 1] = at
              members[#members + 1] = at .. ':c' .. i
              -- A bounded number of arguments per call, for Lua's stack.
              if #members >= 512 or i == keep then
                redis.call('ZADD', log, unpack(members))
                members = {}
              end
            end
            redis.call('PEXPIRE', log, math.ceil(a / 1000))
            live = live - ahead + keep
          end
        end
        log_live[log], log_added[log], log_period[log] = live, 0, a
      end
      local stored, added = log_live[log], log_added[log]
      local live = stored + added
      if live + cost > b then
        admit = false
        -- The request fits once this many of the oldest have left the window.
        local must_leave = live + cost - b
        if must_leave <= stored then
          local oldest = redis.call('ZRANGEBYSCORE', log, oldest_live, '+inf', 'WITHSCORES', 'LIMIT', must_leave - 1, 1)
          wait = math.min(tonumber(oldest[2]), now) + a - now
        else
          -- Only admissions of this request (at `now`), or more than count.
          wait = a
        end
        if added > 0 or stored == 0 then
          reset = a
        else
          local newest = redis.call('ZREVRANGEBYSCORE', log, '+inf', oldest_live, 'WITHSCORES', 'LIMIT', 0, 1)
          reset = math.min(tonumber(newest[2]), now) + a - now
        end
      else
        admit, remaining, reset = true, b - live - cost, a
        log_added[log] = added + cost
        updates[#updates + 1] = field
        updates[#updates + 1] = now + a
      end
    elseif kind == 'sliding' then
      local window = math.floor(now / a)
      local elapsed = now - window * a
      local previous, current = sliding_counts(state[field], window)
      local weighted = math.floor(previous * (a - elapsed) / a) + current
      if weighted + cost <= b then
        admit, remaining, reset = true, b - weighted - cost, 2 * a - elapsed
        updates[#updates + 1] = field
        updates[#updates + 1] = { window, previous, current + cost, a }
      else
        admit = false
        if current > 0 then
          reset = 2 * a - elapsed
        else
          reset = a - elapsed
        end
        local room = b - cost
        if room < 0 then
          -- More than the count at once: never; say one period.
          wait = a
        elseif current <= room then
          wait = math.max(earliest(previous, room - current, a) - elapsed, 1)
        else
          wait = (a - elapsed) + earliest(current, room, a)
        end
      end
    else
      return redis.error_reply('POLICYARGS unknown quota kind ' .. tostring(kind))
    end

    if admit then
      if allowed and (best_check == 0 or remaining < best_remaining) then
        best_check, best_quota, best_remaining, best_reset = check, quota, remaining, reset
      end
    elseif allowed or wait > longest_wait then
      allowed = false
      best_check, best_quota, best_remaining, best_reset, longest_wait = check, quota, 0, reset, wait
    end
  end
  if not peek and #updates > 0 then
    if single then
      -- The bare time alone: fields belong to another set of quotas.
      state = { [BARE] = updates[2] }
      states[key] = state
    else
      -- And a bare time to another quota.
      state[BARE] = nil
      for i = 1, #updates, 2 do
        state[updates[i]] = updates[i + 1]
      end
    end
    dirty[key] = true
  end
end

if peek then
  if not found_any then
    return nil
  end
  local open = 0
  if best_remaining > 0 then
    open = 1
  end
  return { open, best_check, best_quota, best_remaining, best_reset, 0 }
end

if not allowed then
  return { 0, best_check, best_quota, 0, best_reset, longest_wait }
end

-- Record the admission (see `save`). A changed state has at least what
-- this request set.
for key in pairs(dirty) do
  save(key, states[key], now)
end

-- A strict log drops what left the window, records this request's
-- admissions and expires a period after them.
for log, added in pairs(log_added) do
  if added > 0 then
    local period = log_period[log]
    redis.call('ZREMRANGEBYSCORE', log, '-inf', string.format('%d', now - period))
    local count = redis.call('ZCARD', log)
    local members = {}
    local at = string.format('%d', now)
    for i = 1, added do
      -- Unique: every admission at `now` is still in the window and counted.
      members[#members + 1] = at
      members[#members + 1] = at .. ':' .. (count + i)
    end
    redis.call('ZADD', log, unpack(members))
    redis.call('PEXPIRE', log, math.ceil(period / 1000))
  end
end

return { 1, best_check, best_quota, best_remaining, best_reset, 0 }
