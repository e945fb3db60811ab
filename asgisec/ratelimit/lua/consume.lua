-- asgisec token buckets: every bucket of one request decided and charged in ONE call.
--
-- The arithmetic is asgisec/ratelimit/bucket.py `step()`, line for line: GCRA on whole
-- microseconds. Lua numbers are doubles, exact for integers below 2**53 (Redis TIME in
-- microseconds is ~1.8e15), and the only division is made exact by `floordiv` below, so this
-- script and the Python bucket agree to the microsecond (a property test holds them to it).
--
-- KEYS[i]   asgisec:v1:{<identity>}:<bucket key>; one hash tag per call (Redis Cluster)
-- ARGV[1]   cost of the request (integer >= 0)
-- ARGV[2]   "" in production: the clock is Redis TIME, never the client's.
--           An integer number of microseconds ONLY from the test suite, to decide at a given
--           instant (the Lua bucket is checked against bucket.step() on the same inputs).
-- ARGV[3i], ARGV[3i+1], ARGV[3i+2]   interval_us, tau_us, amount of the bucket of KEYS[i]
--
-- Reply: {allowed, now_us, then for each bucket i: allowed_i, tat_i, remaining_i, reset_us_i,
-- retry_us_i}: integers (1/0 for booleans), the fields of bucket.BucketResult in its order.
--
-- Either every bucket admits the request and all are charged (SET with PX = the time until the
-- bucket is full again), or none is charged. A key without a TTL, or with a value that is not
-- an integer, is corrupt (an interrupted writer, fastapi-limiter #6): it counts as a full
-- bucket and is rewritten with a TTL, or deleted when the request is refused.

-- Redis 3.2-4.x replicate scripts verbatim unless told otherwise, which forbids writes after
-- TIME; from Redis 5 effects replication is the default and this call is a harmless no-op.
if redis.replicate_commands then
  redis.replicate_commands()
end

-- floor(a / b) exactly: the double quotient may round across an integer; fix it by one.
local function floordiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local cost = tonumber(ARGV[1])
local now
if ARGV[2] ~= "" then
  now = tonumber(ARGV[2])
else
  local time = redis.call("TIME")
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end

local reply = {1, now}
local allowed = 1
local tats = {}
local corrupt = {}

for i = 1, #KEYS do
  local key = KEYS[i]
  local interval = tonumber(ARGV[3 * i])
  local tau = tonumber(ARGV[3 * i + 1])
  local amount = tonumber(ARGV[3 * i + 2])

  local tat = nil
  local raw = redis.pcall("GET", key)
  if type(raw) == "string" then
    tat = tonumber(raw)
    if tat == nil or tat ~= math.floor(tat) or redis.call("PTTL", key) < 0 then
      tat = nil -- garbage, or no TTL: would never expire
      corrupt[#corrupt + 1] = key
    end
  elseif type(raw) == "table" then -- an error reply (WRONGTYPE): not ours to keep
    corrupt[#corrupt + 1] = key
  end

  local base = now
  if tat ~= nil and tat >= now then
    base = tat
  end
  local new_tat = base + cost * interval
  local allow_at = new_tat - tau
  local n = #reply
  if allow_at <= now then
    tats[i] = new_tat
    reply[n + 1] = 1
    reply[n + 2] = new_tat
    reply[n + 3] = floordiv(tau - (new_tat - now), interval)
    reply[n + 4] = new_tat - now
    reply[n + 5] = 0
  else
    allowed = 0
    reply[n + 1] = 0
    reply[n + 2] = base
    reply[n + 3] = floordiv(tau - (base - now), interval)
    reply[n + 4] = base - now
    if cost > amount then
      reply[n + 5] = -1 -- this cost can never pass
    else
      reply[n + 5] = allow_at - now
    end
  end
end

if allowed == 1 then
  for i = 1, #KEYS do
    local ttl_ms = floordiv(tats[i] - now + 999, 1000) -- until full again, rounded up
    if ttl_ms < 1 then
      ttl_ms = 1
    end
    redis.call("SET", KEYS[i], string.format("%.0f", tats[i]), "PX", string.format("%.0f", ttl_ms))
  end
else
  reply[1] = 0
  if #corrupt > 0 then
    redis.call("DEL", unpack(corrupt))
  end
end

return reply
