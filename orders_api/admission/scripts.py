"""The Lua scripts of admission: each runs atomically inside Redis.

Every script that moves a counter's `remaining` also counts the move in its `seq`:
the relay's reconcile (sales/services.py) leaves a counter that moved since its last
look alone (its requests may be between admission and commit)."""

from __future__ import annotations

# Codes ADMIT returns instead of the units left.
MISSING, CLOSED, SOLD_OUT = -1, -2, -3

ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '', 0} end
local gen = redis.call('HGET', KEYS[1], 'gen')
local sale = tonumber(redis.call('HGET', KEYS[1], 'sale'))
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return {-2, gen, sale} end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
local units = tonumber(ARGV[1])
if remaining < units then
  redis.call('INCR', KEYS[2])
  return {-3, gen, sale}
end
redis.call('HINCRBY', KEYS[1], 'remaining', -units)
redis.call('HINCRBY', KEYS[1], 'seq', 1)
return {remaining - units, gen, sale}
"""

# Compensation: give units back, but only to the counter that took them.
RELEASE = """
if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'seq', 1)
  return redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[1])
end
return -1
"""

RATE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return ttl
end
return 0
"""

# Codes ACCEPT returns before any admission.
RATE_LIMITED, KEY_HELD = -10, -20

# The whole Redis side of an accept, in one round trip: the client's rate limit,
# its Idempotency-Key (KEYS[2], when ARGV[4] is '1') and the sale's counter.
#   KEYS  rate, idempotency, counter, turned-away
#   ARGV  window, limit, units, with-key, lease, ttl, fingerprint
# A key's value is "<fingerprint>|<state>|<answer>": P pending (leased: the attempt
# holding it is running), A accepted (the order and its stored answer are in the
# database), R refused (the answer, "<status> <json body>", is here: sold out or
# not open, which never touch the database). Returns {code, generation or text,
# sale id, value}: the units left, or MISSING / CLOSED / SOLD_OUT / RATE_LIMITED
# (text: seconds to wait) / KEY_HELD (value: the key's).
ACCEPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return {-10, tostring(ttl), 0, ''}
end
local keyed = ARGV[4] == '1'
if keyed then
  local held = redis.call('GET', KEYS[2])
  if held then return {-20, '', 0, held} end
end
local c = redis.call('HMGET', KEYS[3], 'gen', 'sale', 'state', 'remaining', 'name')
if not c[1] then return {-1, '', 0, ''} end
local sale = tonumber(c[2])
local name = c[5] or 'sale'
local code, answer = 0, nil
if c[3] ~= 'open' then
  code = -2
  answer = cjson.encode({error='sale_not_open',
                         detail='The ' .. name .. ' sale is not open.'})
elseif tonumber(c[4]) < tonumber(ARGV[3]) then
  redis.call('INCR', KEYS[4])
  code = -3
  answer = cjson.encode({error='sold_out', detail='Sorry, the ' .. name ..
                         ' is sold out.'})
end
if answer then
  answer = '409 ' .. answer
  if keyed then
    redis.call('SET', KEYS[2], ARGV[7] .. '|R|' .. answer, 'EX', ARGV[6])
  end
  return {code, c[1], sale, answer}
end
local left = redis.call('HINCRBY', KEYS[3], 'remaining', -tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[3], 'seq', 1)
if keyed then redis.call('SET', KEYS[2], ARGV[7] .. '|P|', 'EX', ARGV[5]) end
return {left, c[1], sale, ''}
"""

# A failed accept: its units back (to the counter that gave them) and its pending
# key dropped (only if still its own), in one round trip. KEYS counter, idempotency;
# ARGV units, generation, the pending value.
GIVE_BACK = """
if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'seq', 1)
end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
