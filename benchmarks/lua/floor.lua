-- The floor of any rate limiter on the server's clock: read the clock and
-- the state, write the state with an expiry, answer. ARGV[1] is the value
-- written.
redis.call('TIME')
redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000)
return 1
