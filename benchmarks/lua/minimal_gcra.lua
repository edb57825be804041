-- The floor plus what every GCRA check must add to it: the clock and the
-- stored time as numbers, the arithmetic (an interval of a second, never
-- refused), and the new time and its expiry in milliseconds written out.
-- Its quota is constants and its state the bare time: no argument to read,
-- no quota to tell apart.
local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
tat = tat + 1000000
if tat > now + 1e15 then
  return now - tat
end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',
  string.format('%d', (tat - now + 999) / 1000))
return tat - now
