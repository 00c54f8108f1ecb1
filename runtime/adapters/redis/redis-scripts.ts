/**
 * The Lua scripts of the Redis broker. Per channel there are two keys sharing one hash tag:
 *
 *   <prefix>{<channel>}:m   hash: e = epoch, o = last offset, s = history size, t = history ttl (ms),
 *                           pe, po = the epoch before e and the last offset of it known (see below)
 *   <prefix>{<channel>}:h   stream of the kept events: "d" = payload, "i" = publish id, and "m" =
 *                           the event's metadata (JSON [key, value] pairs) when it has any
 *
 * A stream entry's ID is `<offset>-<ms>`: XRANGE from `<offset>` finds an offset in O(log n)
 * and the second half carries the publish time for age limits. IDs stay increasing because
 * offsets do. Every script that finds no epoch creates one (from ARGV, random per call) and
 * deletes a left-over stream: a flushed or restarted Redis thus yields a new epoch, and offsets
 * restart at 1 only under it.
 *
 * Every script also carries the calling node's last known position of the channel (from its
 * publishes and the events it received). A new epoch records it as pe/po, and a later caller
 * that knows a higher offset of pe raises po: so that a subscriber can be told whether it lost
 * anything of the old epoch (broker/epoch-change.ts).
 */

// Shared prologue: KEYS[1] meta, KEYS[2] stream, ARGV[1] candidate epoch, ARGV[2] meta ttl (ms),
// ARGV[3] and ARGV[4] the caller's known epoch and offset ("" and 0: none).
const ensureEpoch = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0, 's', 0, 't', 0)
  redis.call('DEL', KEYS[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'pe', ARGV[3], 'po', ARGV[4]) end
elseif ARGV[3] ~= '' and ARGV[3] ~= epoch then
  local prev = redis.call('HMGET', KEYS[1], 'pe', 'po')
  if prev[1] == ARGV[3] and tonumber(ARGV[4]) > tonumber(prev[2]) then redis.call('HSET', KEYS[1], 'po', ARGV[4]) end
end
local metaTtl = tonumber(ARGV[2])
if metaTtl > 0 then redis.call('PEXPIRE', KEYS[1], metaTtl) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function idTime(id) return tonumber(string.match(id, '-(%d+)$')) end
local function idOffset(id) return tonumber(string.match(id, '^(%d+)')) end
`;

/**
 * ARGV[5] pub/sub channel, ARGV[6] payload, ARGV[7] history size, ARGV[8] history ttl (ms),
 * ARGV[9] publish id, ARGV[10] "1" on a retry whose first attempt may have run, ARGV[11] the
 * metadata text ("" or absent for none).
 * Appends, trims (by count, approximately; by age, a bounded step per publish), and publishes
 * "<epoch>\\n<offset>\\n<payload>", or with metadata of n bytes
 * "<epoch>\\n<offset> <n>\\n<metadata><payload>". Returns { epoch, offset }.
 *
 * The publish id is kept in the entry (field "i") so that a retry finds the attempt that ran
 * among the channel's last 64 entries instead of appending the event twice.
 */
export const publishScript = `${ensureEpoch}
if ARGV[10] == '1' then
  for _, e in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 64)) do
    if e[2][4] == ARGV[9] then return { epoch, idOffset(e[1]) } end
  end
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local meta = ARGV[11] or ''
local size = tonumber(ARGV[7])
local ttl = tonumber(ARGV[8])
redis.call('HSET', KEYS[1], 's', size, 't', ttl)
if size > 0 then
  if meta == '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, string.format('%d-%d', offset, now), 'd', ARGV[6], 'i', ARGV[9])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, string.format('%d-%d', offset, now), 'd', ARGV[6], 'i', ARGV[9], 'm', meta)
  end
  if ttl > 0 then
    local cutoff = now - ttl
    local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    if head[1] and idTime(head[1][1]) < cutoff then
      -- At most 64 expired entries go per publish, so a publish never stalls on a long backlog;
      -- reads skip whatever expired entries remain.
      local batch = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 64)
      local keep = idOffset(batch[#batch][1]) + 1
      for _, e in ipairs(batch) do
        if idTime(e[1]) >= cutoff then keep = idOffset(e[1]); break end
      end
      redis.call('XTRIM', KEYS[2], 'MINID', keep)
    end
    redis.call('PEXPIRE', KEYS[2], ttl)
  elseif metaTtl > 0 then
    redis.call('PEXPIRE', KEYS[2], metaTtl)
  end
else
  redis.call('DEL', KEYS[2])
end
if meta == '' then
  redis.call('PUBLISH', ARGV[5], epoch .. '\\n' .. string.format('%d', offset) .. '\\n' .. ARGV[6])
else
  redis.call('PUBLISH', ARGV[5], epoch .. '\\n' .. string.format('%d %d', offset, #meta) .. '\\n' .. meta .. ARGV[6])
end
return { epoch, offset }
`;

/** Returns { epoch, offset }. */
export const positionScript = `${ensureEpoch}
return { epoch, tonumber(redis.call('HGET', KEYS[1], 'o')) }
`;

/**
 * ARGV[5] since epoch, ARGV[6] since offset, ARGV[7] limit.
 * Returns { epoch, offset, first, size, pe, po, offset1, payload1, metadata1, offset2, ... } where
 * `first` is the first offset still kept at or after the wanted one (offset + 1 when none),
 * `size` the channel's history size (0: the channel keeps no history) and pe/po the previous
 * epoch and its last known offset ("" and 0 when not known); an event without metadata has "".
 */
export const historyScript = `${ensureEpoch}
local offset = tonumber(redis.call('HGET', KEYS[1], 'o'))
local size = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local ttl = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local wanted = 1
if ARGV[5] == epoch then wanted = tonumber(ARGV[6]) + 1 end
local prev = redis.call('HMGET', KEYS[1], 'pe', 'po')
local out = { epoch, offset, offset + 1, size, prev[1] or '', tonumber(prev[2] or '0') }
if wanted > offset or size == 0 then return out end
-- MAXLEN ~ may keep more than size entries; the bound by count is applied here.
local start = math.max(wanted, offset - size + 1)
local cutoff = 0
if ttl > 0 then cutoff = now - ttl end
local tail = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if not tail[1] or idOffset(tail[1][1]) < start or idTime(tail[1][1]) < cutoff then return out end
-- Entry times grow with offsets, so expired entries are a prefix: binary search for its end.
local lo, hi = start, idOffset(tail[1][1])
if cutoff > 0 and idTime(redis.call('XRANGE', KEYS[2], lo, '+', 'COUNT', 1)[1][1]) < cutoff then
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('XRANGE', KEYS[2], mid, '+', 'COUNT', 1)[1]
    if idTime(e[1]) >= cutoff then hi = mid else lo = idOffset(e[1]) + 1 end
  end
end
local entries = redis.call('XRANGE', KEYS[2], lo, '+', 'COUNT', tonumber(ARGV[7]))
if entries[1] then out[3] = idOffset(entries[1][1]) end
for _, e in ipairs(entries) do
  out[#out + 1] = idOffset(e[1])
  out[#out + 1] = e[2][2]
  out[#out + 1] = e[2][6] or ''
end
return out
`;
