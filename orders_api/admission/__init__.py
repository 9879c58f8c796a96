"""Admission in Redis: the sale's counter, the per-client rate limit, their keys.

redis_client   the one client (and pool) per process, with the Lua scripts loaded
scripts        the Lua scripts (admit, release, rate)
keys           every Redis key this service uses, under ORDERS_REDIS_PREFIX
counter        admission against a sale's allocation (why a generation: see there)
rate_limit     the per-client rate limit of order attempts
"""
