-- The strikes of one subject and its block, atomic on the server: the
-- API-key lockout's failed attempts of one client, or the penalty box's
-- refusals of one client in one scope.
--
-- KEYS[1]  the subject's state, a string "<blocked until>;<t1>,<t2>,...":
--          when its block ends (0 when none) and the times of its strikes
--          in the window, in microseconds on the server's clock. It expires
--          when nothing in it matters any more: at the end of the block, or
--          a window after the newest strike.
-- ARGV[1]  "strike", "state" or "pardon".
--          For "strike" and "state": ARGV[2] how many strikes start a block
--          (1 to 100), ARGV[3] the window and ARGV[4] the block's length, in
--          microseconds (integers in decimal).
--
-- "strike": a subject already blocked is not counted again; otherwise the
-- strike is logged, the strikes older than the window are dropped and, when
-- as many remain as start a block, the block starts and the log is cleared.
-- "state" reports without counting. A strike at time t counts until
-- t + window (excluded), as in the engine's in-memory lockout.
--
-- Reply to "strike" and "state": { blocked_for_us (0 when not blocked),
-- started (1 when this strike started the block), strikes in the window }.
-- Reply to "pardon": the number of keys deleted.
--
-- Errors start with POLICYDATA when the key holds data this script did not
-- write, and with POLICYARGS when the arguments are malformed.

local key, op = KEYS[1], ARGV[1]
if op == 'pardon' then
  return redis.call('DEL', key)
end
if op ~= 'strike' and op ~= 'state' then
  return redis.error_reply('POLICYARGS the first argument must be "strike", "state" or "pardon"')
end
local limit, window, block = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (limit and window and block) or limit < 1 or limit > 100 or window < 1 or block < 1 then
  return redis.error_reply('POLICYARGS strikes must be 1 to 100, window and block at least 1 µs')
end

local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]

local blocked_until, times = 0, {}
-- A wrong type is an error table, and nil is false.
local raw = redis.pcall('GET', key)
if raw then
  if type(raw) ~= 'string' then
    return redis.error_reply('POLICYDATA key ' .. key .. ' is not a string; delete it and it is recreated on the next strike')
  end
  local until_text, log = string.match(raw, '^(%d+);([%d,]*)$')
  if not until_text then
    return redis.error_reply('POLICYDATA key ' .. key .. ' does not hold strikes; delete it and it is recreated on the next strike')
  end
  blocked_until = until_text + 0
  for text in string.gmatch(log, '%d+') do
    local at = text + 0
    if at > now - window then
      times[#times + 1] = at
    end
  end
end

if blocked_until > now then
  return { blocked_until - now, 0, 0 }
end
if op == 'state' then
  return { 0, 0, #times }
end

times[#times + 1] = now
if #times >= limit then
  -- '%d' of (µs + 999) / 1000 is the ceiling in ms.
  redis.call('SET', key, string.format('%d;', now + block), 'PX', string.format('%d', (block + 999) / 1000))
  return { block, 1, 0 }
end
local parts = {}
for i, at in ipairs(times) do
  parts[i] = string.format('%d', at)
end
redis.call('SET', key, '0;' .. table.concat(parts, ','), 'PX', string.format('%d', (window + 999) / 1000))
return { 0, 0, #times }
