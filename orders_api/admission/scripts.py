"""The Lua scripts of admission: each runs atomically inside Redis."""

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
return {remaining - units, gen, sale}
"""

# Compensation: give units back, but only to the counter that took them.
RELEASE = """
if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
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
