-- One rate-limit decision, atomic on the server: every quota of every check
-- of one request, counted only if all of them admit it (all or nothing).
--
-- KEYS[j]  the state of check j's client in its scope, a string
--          "field=value;field=value" with one field per quota that still
--          holds something: a GCRA quota's theoretical arrival time (TAT), or
--          a strict quota's admission times in the window, ascending and
--          comma-separated. Times are microseconds on the server's clock.
--
-- ARGV[1]  "check" (decide and count) or "peek" (report, count nothing).
-- Then per check j, in KEYS order: its cost (how many requests it counts as,
-- at least 1) and its number of quotas, followed by four arguments per quota:
--   kind   "gcra" or "strict"
--   field  the quota's name in the state: its kind and every parameter that
--          shapes its state, so a changed quota starts afresh
--   a, b   gcra: emission interval (period / count) and burst;
--          strict: period and count
--
-- The clock is the server's TIME, so every instance agrees on it.
--
-- GCRA: a request of cost c is admitted when, after adding c * interval to
-- max(TAT, now), the TAT is at most burst * interval ahead of now: a burst
-- of `burst`, then one request per interval.
-- Strict: a request of cost c is admitted when at most count - c admissions
-- fall in the last period: never more than count in any window.
--
-- Reply: nil for a peek at a client with no state, else
--   { allowed (1 or 0), check (1-based), quota (1-based), remaining,
--     reset_after_us, retry_after_us }
-- On a refusal the decisive quota is the one that makes the client wait
-- longest, so that a retry after retry_after_us can succeed; otherwise the
-- quota with the fewest requests left (the first one on a tie).
--
-- Errors start with POLICYDATA when a key holds data this script did not
-- write, and with POLICYARGS when the arguments are malformed.

local ARGS_PER_QUOTA = 4
-- Times stay below 2^53 so that they are exact in Lua's doubles.
local MAX_STAMP = 9e15

local peek = ARGV[1] == 'peek'
if ARGV[1] ~= 'check' and not peek then
  return redis.error_reply('POLICYARGS the first argument must be "check" or "peek"')
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local function not_ours(key, what)
  return redis.error_reply('POLICYDATA key ' .. key .. ' ' .. what ..
    '; delete it and it is recreated on the next request')
end

local function stamp(text)
  local value = tonumber(text)
  -- Rejects text, NaN (which fails every comparison) and infinities.
  if value and value >= 0 and value < MAX_STAMP then
    return value
  end
  return nil
end

-- The common case, one check with one GCRA quota whose key holds nothing
-- else, skips the general path's bookkeeping (same arithmetic). Anything
-- else, bad data included, takes the general path below.
if not peek and #KEYS == 1 and #ARGV == 7 and ARGV[3] == '1' and ARGV[4] == 'gcra' then
  local key, field = KEYS[1], ARGV[5]
  local cost, a, b = tonumber(ARGV[2]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local raw = redis.pcall('GET', key)
  local tat = now
  local simple = cost and cost >= 1 and a and a >= 1 and b and b >= 1 and type(raw) ~= 'table'
  if simple and raw then
    local equals = string.find(raw, '=', 1, true)
    simple = equals ~= nil and string.sub(raw, 1, equals - 1) == field
      and string.find(raw, ';', equals, true) == nil
    if simple then
      tat = stamp(string.sub(raw, equals + 1))
      simple = tat ~= nil
    end
  end
  if simple then
    local capacity = a * b
    local start = math.min(math.max(tat, now), now + capacity)
    local next_tat = start + cost * a
    local horizon = now + capacity
    if next_tat > horizon then
      return { 0, 1, 1, 0, start - now, next_tat - horizon }
    end
    redis.call('SET', key, field .. '=' .. string.format('%.0f', next_tat), 'PX',
      math.ceil((next_tat - now) / 1000))
    return { 1, 1, 1, math.floor((horizon - next_tat) / a), next_tat - now, 0 }
  end
end

-- The state of each key, read once: field -> TAT (gcra) or list of times
-- (strict), as stored; and the keys this request changes.
local states = {}
local dirty = {}
local found_any = false

local allowed = true
local best_check, best_quota, best_remaining, best_reset, longest_wait = 0, 0, 0, 0, -1

local arg = 2
for check = 1, #KEYS do
  local key = KEYS[check]
  local cost = tonumber(ARGV[arg])
  local n = tonumber(ARGV[arg + 1])
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
      local kind = redis.call('TYPE', key)
      if type(kind) == 'table' then
        kind = kind.ok
      end
      return not_ours(key, 'holds a ' .. tostring(kind) .. ', not a rate-limit state')
    end
    state = {}
    if raw then
      found_any = true
      local parsed = 0
      for field, value in string.gmatch(raw, '([^;=]+)=([^;=]*)') do
        parsed = parsed + #field + #value + 2
        if string.sub(field, 1, 2) == 's:' then
          local times = {}
          for text in string.gmatch(value, '[^,]+') do
            times[#times + 1] = stamp(text)
            if times[#times] == nil then
              return not_ours(key, 'holds a field ' .. field .. ' that is not a list of times')
            end
          end
          state[field] = times
        else
          state[field] = stamp(value)
          if state[field] == nil then
            return not_ours(key, 'holds a field ' .. field .. ' that is not a time')
          end
        end
      end
      if parsed ~= #raw + 1 then
        return not_ours(key, 'holds a string that is not a rate-limit state')
      end
    end
    states[key] = state
  end

  -- Judge every quota of this check against the state before it; what it
  -- changes applies once the whole check is judged.
  local updates = {}
  for quota = 1, n do
    local kind, field = ARGV[arg], ARGV[arg + 1]
    local a, b = tonumber(ARGV[arg + 2]), tonumber(ARGV[arg + 3])
    arg = arg + ARGS_PER_QUOTA
    if field == nil or a == nil or a < 1 or b == nil or b < 1 then
      return redis.error_reply('POLICYARGS bad parameters for quota ' .. quota .. ' of check ' .. check)
    end

    local admit, remaining, reset, wait
    if kind == 'gcra' then
      local capacity = a * b
      local tat = state[field]
      if type(tat) ~= 'number' then
        tat = now
      end
      -- A TAT further ahead than a full burst can only come from a clock
      -- that went back: capped so that a client waits at most one period.
      local start = math.min(math.max(tat, now), now + capacity)
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
      local live = {}
      local times = state[field]
      if type(times) == 'table' then
        for _, at in ipairs(times) do
          if at + a > now then
            live[#live + 1] = at
          end
        end
      end
      if #live + cost > b then
        admit = false
        -- The request fits once this many of the oldest have left the window.
        local must_leave = #live + cost - b
        if must_leave <= #live then
          wait = live[must_leave] + a - now
        else
          wait = a
        end
        if #live > 0 then
          reset = live[#live] + a - now
        else
          reset = a
        end
      else
        admit, remaining, reset = true, b - #live - cost, a
        for _ = 1, cost do
          live[#live + 1] = now
        end
        updates[#updates + 1] = field
        updates[#updates + 1] = live
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
  if not peek then
    for i = 1, #updates, 2 do
      state[updates[i]] = updates[i + 1]
      dirty[key] = true
    end
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

-- Record the admission. A state keeps only what is still ahead of now (a
-- quota without it behaves as for a new client) and expires when the last
-- of it is reached. A changed state has at least what this request added.
for key in pairs(dirty) do
  local state, last = nil, now
  for field, value in pairs(states[key]) do
    local kept
    if type(value) == 'table' then
      -- Strict: the times still in the window; each leaves it a period later.
      local period = tonumber(string.match(field, '^s:(%d+):'))
      for _, at in ipairs(value) do
        if period and at + period > now then
          kept = (kept and kept .. ',' or '') .. string.format('%.0f', at)
          if at + period > last then
            last = at + period
          end
        end
      end
    elseif value > now then
      kept = string.format('%.0f', value)
      if value > last then
        last = value
      end
    end
    if kept then
      state = (state and state .. ';' or '') .. field .. '=' .. kept
    end
  end
  redis.call('SET', key, state, 'PX', math.ceil((last - now) / 1000))
end

return { 1, best_check, best_quota, best_remaining, best_reset, 0 }
