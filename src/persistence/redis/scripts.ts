/**
 * The Lua scripts of the Redis store. Every key a script touches is built from KEYS[1], the
 * store's base key, which carries a hash tag (`…{store}:`): all keys of a store live in one slot,
 * so a script (one atomic unit) can touch any of them on a single Redis, under Sentinel and in a
 * Redis Cluster alike.
 *
 * Keys under the base key B:
 *   B s        hash  clientId -> session record
 *   B c        set   client ids that have per-client keys
 *   B b:<cid>  hash  topic filter -> subscription
 *   B q:<cid>  zset  seq (member and score) of the queue
 *   B d:<cid>  hash  seq -> queue entry ("<len>:<messageId>" then the rest)
 *   B i:<cid>  hash  packet id -> inflight entry ("<len>:<messageId>" then the rest)
 *   B r:<cid>  set   inbound QoS 2 packet ids (PUBREC sent, PUBREL awaited)
 *   B t        hash  topic -> retained message id (`t:<node>` for a node of a cluster: each node keeps its own)
 *   B o        hash  clientId -> owner "<node>|<fencing token>" (cluster: the node that holds the session)
 *   B m        hash  message id -> message
 *   B n        hash  message id -> reference count
 *
 * Ops arrive as ARGV after a header: the retained key's name, then a count k and k pairs
 * (clientId, expected owner), then an op letter followed by its fields per op (see `store.ts`).
 * A script first checks every reference (Redis does not roll back a script that fails half way),
 * then applies the ops in order, then deletes the messages whose count ended at 0.
 *
 * Fencing: an op on a client whose pair is in the header applies only while `o[clientId]` still
 * equals the expected owner; otherwise it is skipped (another node took the session over with a
 * newer token) and the client id is returned, so the writer learns it lost the session. A message
 * referenced by a skipped op is kept even at a count of 0 (the writer may still count a reference
 * to it): at worst a message left behind by a lost race, never a missing one.
 */

export const WRITE_SCRIPT = `
local B = KEYS[1]
local A = ARGV
local n = #A
local M, N = B .. 'm', B .. 'n'
local T = B .. A[1]
local O = B .. 'o'
local fence = {}
local k = tonumber(A[2])
for j = 0, k - 1 do fence[A[3 + 2 * j]] = A[4 + 2 * j] end
local first = 3 + 2 * k
local lost = {}
local lostList = {}
local function fenced(cid)
  local want = fence[cid]
  if want == nil then return false end
  local v = lost[cid]
  if v == nil then
    v = redis.call('HGET', O, cid) ~= want
    lost[cid] = v
    if v then lostList[#lostList + 1] = cid end
  end
  return v
end
local keep = {}
local put = {}
local function known(id)
  return put[id] or redis.call('HEXISTS', M, id) == 1
end
local i = first
while i <= n do
  local op = A[i]
  if op == 'M' then put[A[i + 1]] = true; i = i + 3
  elseif op == 'S' then i = i + 3
  elseif op == 'D' then i = i + 2
  elseif op == 'B' then i = i + 4
  elseif op == 'U' then i = i + 3
  elseif op == 'E' or op == 'I' then
    if fenced(A[i + 1]) then keep[A[i + 3]] = true
    elseif not known(A[i + 3]) then return redis.error_reply('unknown-message ' .. A[i + 3]) end
    i = i + 5
  elseif op == 'Q' or op == 'C' or op == 'R' or op == 'L' then i = i + 3
  elseif op == 'T' then
    if not known(A[i + 2]) then return redis.error_reply('unknown-message ' .. A[i + 2]) end
    i = i + 3
  elseif op == 'X' then i = i + 2
  else return redis.error_reply('bad op ' .. tostring(op)) end
end
local released = {}
local function ref(id) redis.call('HINCRBY', N, id, 1) end
local function unref(id) redis.call('HINCRBY', N, id, -1); released[id] = true end
local function mid(v)
  local c = string.find(v, ':', 1, true)
  local len = tonumber(string.sub(v, 1, c - 1))
  return string.sub(v, c + 1, c + len)
end
local C = B .. 'c'
local cidOps = { S = 3, D = 2, B = 4, U = 3, E = 5, Q = 3, I = 5, C = 3, R = 3, L = 3 }
i = first
while i <= n do
  local op = A[i]
  local width = cidOps[op]
  if width ~= nil and fenced(A[i + 1]) then
    i = i + width
  elseif op == 'M' then
    if redis.call('HSETNX', M, A[i + 1], A[i + 2]) == 1 then released[A[i + 1]] = true end
    i = i + 3
  elseif op == 'S' then
    redis.call('HSET', B .. 's', A[i + 1], A[i + 2]); i = i + 3
  elseif op == 'D' then
    local cid = A[i + 1]
    for _, v in ipairs(redis.call('HVALS', B .. 'd:' .. cid)) do unref(mid(v)) end
    for _, v in ipairs(redis.call('HVALS', B .. 'i:' .. cid)) do unref(mid(v)) end
    redis.call('HDEL', B .. 's', cid)
    redis.call('DEL', B .. 'b:' .. cid, B .. 'q:' .. cid, B .. 'd:' .. cid, B .. 'i:' .. cid, B .. 'r:' .. cid)
    redis.call('SREM', C, cid)
    if fence[cid] == nil then redis.call('HDEL', O, cid) end
    i = i + 2
  elseif op == 'B' then
    redis.call('HSET', B .. 'b:' .. A[i + 1], A[i + 2], A[i + 3]); redis.call('SADD', C, A[i + 1]); i = i + 4
  elseif op == 'U' then
    redis.call('HDEL', B .. 'b:' .. A[i + 1], A[i + 2]); i = i + 3
  elseif op == 'E' then
    local cid, seq, id = A[i + 1], A[i + 2], A[i + 3]
    local d = B .. 'd:' .. cid
    ref(id)
    local old = redis.call('HGET', d, seq)
    redis.call('HSET', d, seq, A[i + 4])
    redis.call('ZADD', B .. 'q:' .. cid, seq, seq)
    redis.call('SADD', C, cid)
    if old then unref(mid(old)) end
    i = i + 5
  elseif op == 'Q' then
    local d = B .. 'd:' .. A[i + 1]
    local old = redis.call('HGET', d, A[i + 2])
    if old then
      redis.call('HDEL', d, A[i + 2]); redis.call('ZREM', B .. 'q:' .. A[i + 1], A[i + 2]); unref(mid(old))
    end
    i = i + 3
  elseif op == 'I' then
    local cid, pid, id = A[i + 1], A[i + 2], A[i + 3]
    local h = B .. 'i:' .. cid
    local old = redis.call('HGET', h, pid)
    local oldId = old and mid(old)
    if oldId ~= id then ref(id) end
    redis.call('HSET', h, pid, A[i + 4])
    redis.call('SADD', C, cid)
    if old and oldId ~= id then unref(oldId) end
    i = i + 5
  elseif op == 'C' then
    local h = B .. 'i:' .. A[i + 1]
    local old = redis.call('HGET', h, A[i + 2])
    if old then redis.call('HDEL', h, A[i + 2]); unref(mid(old)) end
    i = i + 3
  elseif op == 'R' then
    redis.call('SADD', B .. 'r:' .. A[i + 1], A[i + 2]); redis.call('SADD', C, A[i + 1]); i = i + 3
  elseif op == 'L' then
    redis.call('SREM', B .. 'r:' .. A[i + 1], A[i + 2]); i = i + 3
  elseif op == 'T' then
    local old = redis.call('HGET', T, A[i + 1])
    if old ~= A[i + 2] then
      ref(A[i + 2])
      redis.call('HSET', T, A[i + 1], A[i + 2])
      if old then unref(old) end
    end
    i = i + 3
  elseif op == 'X' then
    local old = redis.call('HGET', T, A[i + 1])
    if old then redis.call('HDEL', T, A[i + 1]); unref(old) end
    i = i + 2
  end
end
for id in pairs(released) do
  local r = tonumber(redis.call('HGET', N, id) or '0')
  if r <= 0 and not keep[id] then redis.call('HDEL', M, id); redis.call('HDEL', N, id) end
end
return lostList
`;

/**
 * Everything stored, as one consistent snapshot. ARGV: the retained key's name, and a node id
 * (empty: every session; else only the sessions that node owns, and only the messages they and
 * its retained topics reference).
 * { sessions (flat hash), retained (flat hash), messages (flat hash), owners (flat: cid, owner),
 *   then per client: cid, subscriptions (flat hash), queue (flat hash seq -> entry), inflight (flat hash), inbound QoS 2 ids }.
 */
export const READ_ALL_SCRIPT = `
local B = KEYS[1]
local node = ARGV[2]
local retained = redis.call('HGETALL', B .. ARGV[1])
if node == '' then
  local out = { redis.call('HGETALL', B .. 's'), retained, redis.call('HGETALL', B .. 'm'), {} }
  for _, cid in ipairs(redis.call('SMEMBERS', B .. 'c')) do
    out[#out + 1] = cid
    out[#out + 1] = redis.call('HGETALL', B .. 'b:' .. cid)
    out[#out + 1] = redis.call('HGETALL', B .. 'd:' .. cid)
    out[#out + 1] = redis.call('HGETALL', B .. 'i:' .. cid)
    out[#out + 1] = redis.call('SMEMBERS', B .. 'r:' .. cid)
  end
  return out
end
local mine = node .. '|'
local sessions, owners, messages, ids = {}, {}, {}, {}
local function want(v)
  local c = string.find(v, ':', 1, true)
  ids[string.sub(v, c + 1, c + tonumber(string.sub(v, 1, c - 1)))] = true
end
for j = 2, #retained, 2 do ids[retained[j]] = true end
local out = { sessions, retained, messages, owners }
local o = redis.call('HGETALL', B .. 'o')
for j = 1, #o, 2 do
  local cid, owner = o[j], o[j + 1]
  if string.sub(owner, 1, #mine) == mine then
    owners[#owners + 1] = cid
    owners[#owners + 1] = owner
    local rec = redis.call('HGET', B .. 's', cid)
    if rec then
      sessions[#sessions + 1] = cid
      sessions[#sessions + 1] = rec
    end
    local d = redis.call('HGETALL', B .. 'd:' .. cid)
    local f = redis.call('HGETALL', B .. 'i:' .. cid)
    for x = 2, #d, 2 do want(d[x]) end
    for x = 2, #f, 2 do want(f[x]) end
    out[#out + 1] = cid
    out[#out + 1] = redis.call('HGETALL', B .. 'b:' .. cid)
    out[#out + 1] = d
    out[#out + 1] = f
    out[#out + 1] = redis.call('SMEMBERS', B .. 'r:' .. cid)
  end
end
for id in pairs(ids) do
  local m = redis.call('HGET', B .. 'm', id)
  if m then
    messages[#messages + 1] = id
    messages[#messages + 1] = m
  end
end
return out
`;

/**
 * Takes one session over for a node (cluster): ARGV clientId, new owner "<node>|<token>". Sets the
 * owner and returns, in the READ_ALL layout, that session alone (with the messages it references)
 * and the previous owner as the owners list.
 */
export const LOAD_SESSION_SCRIPT = `
local B = KEYS[1]
local cid, owner = ARGV[1], ARGV[2]
local prev = redis.call('HGET', B .. 'o', cid)
redis.call('HSET', B .. 'o', cid, owner)
local sessions, messages, ids = {}, {}, {}
local rec = redis.call('HGET', B .. 's', cid)
if rec then
  sessions[1] = cid
  sessions[2] = rec
end
local function want(v)
  local c = string.find(v, ':', 1, true)
  ids[string.sub(v, c + 1, c + tonumber(string.sub(v, 1, c - 1)))] = true
end
local d = redis.call('HGETALL', B .. 'd:' .. cid)
local f = redis.call('HGETALL', B .. 'i:' .. cid)
for x = 2, #d, 2 do want(d[x]) end
for x = 2, #f, 2 do want(f[x]) end
for id in pairs(ids) do
  local m = redis.call('HGET', B .. 'm', id)
  if m then
    messages[#messages + 1] = id
    messages[#messages + 1] = m
  end
end
return { sessions, {}, messages, prev and { cid, prev } or {}, cid, redis.call('HGETALL', B .. 'b:' .. cid), d, f, redis.call('SMEMBERS', B .. 'r:' .. cid) }
`;

/**
 * The sessions a (dead) node owns, for a survivor: ARGV node. Flat: cid, owner, session record, …
 */
export const OWNED_SESSIONS_SCRIPT = `
local B = KEYS[1]
local mine = ARGV[1] .. '|'
local out = {}
local o = redis.call('HGETALL', B .. 'o')
for j = 1, #o, 2 do
  if string.sub(o[j + 1], 1, #mine) == mine then
    local rec = redis.call('HGET', B .. 's', o[j])
    if rec then
      out[#out + 1] = o[j]
      out[#out + 1] = o[j + 1]
      out[#out + 1] = rec
    end
  end
end
return out
`;

/** ARGV: clientId, afterSeq, limit. Returns a flat list: entry, message, entry, message, … */
export const READ_QUEUE_SCRIPT = `
local B = KEYS[1]
local cid = ARGV[1]
local seqs = redis.call('ZRANGEBYSCORE', B .. 'q:' .. cid, '(' .. ARGV[2], '+inf', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
local d = B .. 'd:' .. cid
for _, seq in ipairs(seqs) do
  local v = redis.call('HGET', d, seq)
  local c = string.find(v, ':', 1, true)
  local id = string.sub(v, c + 1, c + tonumber(string.sub(v, 1, c - 1)))
  out[#out + 1] = seq
  out[#out + 1] = v
  out[#out + 1] = redis.call('HGET', B .. 'm', id)
end
return out
`;
