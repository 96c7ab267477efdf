-- Shoal's participant steps on Redis: every step of one partition is one call of this script,
-- so it is atomic (Redis runs a script alone) and every coordinator sees the same partition.
--
-- ARGV[1] is the partition's key prefix, "{<namespace>:p<n>}:" (the hash tag keeps a partition
-- in one Redis Cluster slot), ARGV[2] the step, the rest the step's arguments. KEYS lists the
-- partition's fixed keys (see grid/redis/layout.py); per-map hashes are named from the prefix.
-- Every check runs before the first write: a script that fails half-way does not roll back.
--
-- Records: <p>m (hash: lsn, version), <p>l (hash: map NUL key -> cjson {txn: mode}),
-- <p>o (hash: request -> cjson answer), <p>d (hash: txn -> committed|aborted),
-- <p>s (set of staged txns), <p>x:<txn> (hash: state, lease, status_partition, durable,
-- locks (cjson), n, and per write i: op.i, map.i, key.i, value.i, ck.i, cv.i),
-- <p>t (hash: txn -> cjson status record), <p>tu (set: txns whose record is undecided),
-- <p>tf (sorted set: txns whose record is decided, by updated time; what the sweeper forgets
-- first), <p>e:<map> (hash: key -> value bytes),
-- <p>v:<map> (hash: key -> version), <p>r:<map> (hash: key -> how many values reference it), <p>h:<map>:<key> (sorted set of the key's overwritten
-- states, "<begin version>|<value>" scored by the version that ended them), <p>hk:<map> (set of
-- keys with kept states), <p>hx (sorted set "<map> NUL <key> NUL <end>" by end: what to forget
-- first), <p>oq and <p>dq (lists: the order outcomes and decisions were remembered in);
-- <p>m also holds floor (the newest end of a forgotten state), map:<map> (the newest version
-- that changed the map in this partition) and changes:<map> (how many steps changed the map's
-- entries here: the SQL image cache's key, see coordinator/sql/snapshot.py).

local prefix = ARGV[1]
local step = ARGV[2]
local META, LOCKS, OUTCOMES, DECIDED, STAGED, STATUSES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local EXPIRING, OUTCOME_ORDER, DECIDED_ORDER = KEYS[7], KEYS[8], KEYS[9]
local UNDECIDED_STATUSES, DECIDED_STATUSES = KEYS[10], KEYS[11]
-- How many answers and decisions a partition remembers for retries, as the memory participant.
local REMEMBERED_MAX = 4096

-- Remembers field -> value in a hash, forgetting the oldest beyond REMEMBERED_MAX.
local function remember(hash, order, field, value)
  if redis.call('HSETNX', hash, field, value) == 0 then
    redis.call('HSET', hash, field, value)
    return
  end
  redis.call('RPUSH', order, field)
  while redis.call('LLEN', order) > REMEMBERED_MAX do
    redis.call('HDEL', hash, redis.call('LPOP', order))
  end
end

local COMPATIBLE = {S = {S = true, R = true}, I = {I = true, R = true}, R = {S = true, I = true, R = true}, X = {}}

local function lock_field(map, key) return map .. '\0' .. key end

local function current_version(map, key)
  return tonumber(redis.call('HGET', prefix .. 'v:' .. map, key) or '0')
end

-- Reads ARGV from position i: n, then n reads of (map, key, version).
local function parse_reads(i)
  local count = tonumber(ARGV[i]); i = i + 1
  local reads = {}
  for _ = 1, count do
    reads[#reads + 1] = {map = ARGV[i], key = ARGV[i + 1], version = tonumber(ARGV[i + 2])}
    i = i + 3
  end
  return reads, i
end

-- Reads ARGV from position i: n, then n writes of (op, map, key, value, condition, version).
local function parse_writes(i)
  local count = tonumber(ARGV[i]); i = i + 1
  local writes = {}
  for _ = 1, count do
    writes[#writes + 1] = {op = ARGV[i], map = ARGV[i + 1], key = ARGV[i + 2], value = ARGV[i + 3],
      condition = ARGV[i + 4], condition_version = tonumber(ARGV[i + 5])}
    i = i + 6
  end
  return writes, i
end

local function lock_modes(reads, writes)
  local modes, order = {}, {}
  local function want(map, key, mode)
    local field = lock_field(map, key)
    local held = modes[field]
    if held == nil then
      order[#order + 1] = field
      modes[field] = mode
    elseif held ~= mode then
      -- One mode that grants both (grid.locks.combine_modes).
      if (held == 'S' and mode == 'R') or (held == 'R' and mode == 'S') then
        modes[field] = 'S'
      elseif (held == 'I' and mode == 'R') or (held == 'R' and mode == 'I') then
        modes[field] = 'I'
      else
        modes[field] = 'X'
      end
    end
  end
  for _, read in ipairs(reads) do want(read.map, read.key, 'S') end
  -- PUT and DELETE overwrite (X); a reference keeps the key from being deleted (R); a
  -- condition needs the key to stay as checked (X). Increments, appends and sketch adds take
  -- their modes in grid/redis/hooked.py.
  for _, write in ipairs(writes) do
    local mode = write.op == 'REFERENCE' and 'R' or 'X'
    if write.condition ~= '' then mode = 'X' end
    want(write.map, write.key, mode)
  end
  return modes, order
end

local function reference_count(map, key)
  return tonumber(redis.call('HGET', prefix .. 'r:' .. map, key) or '0')
end

-- nil when free for txn (or for a one-phase write when txn is ''), else the refusal.
local function lock_refusal(field, mode, txn)
  local raw = redis.call('HGET', LOCKS, field)
  if not raw then return nil end
  local holders = cjson.decode(raw)
  for holder, held in pairs(holders) do
    if holder ~= txn and not COMPATIBLE[mode][held] then
      local map, key = string.match(field, '^(.-)%z(.*)$')
      return {'conflict', "'" .. map .. '/' .. key .. "' is locked by a transaction in flight", map, key}
    end
  end
  return nil
end

local function read_refusal(read)
  local now = current_version(read.map, read.key)
  if now ~= read.version then
    return {'conflict', "'" .. read.map .. '/' .. read.key .. "' changed since it was read (read version "
      .. read.version .. ', now ' .. now .. ')', read.map, read.key}
  end
  return nil
end

local function condition_refusal(write, version)
  local where = write.map .. '/' .. write.key
  if write.condition == 'if_absent' and version ~= 0 then
    return {'precondition', "'" .. where .. "' exists (condition if_absent)", write.map, write.key}
  end
  if write.condition == 'if_exists' and version == 0 then
    return {'precondition', "'" .. where .. "' does not exist (condition if_exists)", write.map, write.key}
  end
  if write.condition == 'if_version' and version ~= write.condition_version then
    return {'precondition', "'" .. where .. "' is at version " .. version .. ', not '
      .. write.condition_version .. ' (condition if_version)', write.map, write.key}
  end
  return nil
end

-- Checks the conditions of writes applied in order, each seeing the ones before it (a key
-- written earlier in the step is at the step's version); returns the refusal or nil, and the
-- answer's removed positions (0-based): the deletes that found a value.
local function check_writes(writes, step_version, check)
  local pending = {}
  local references = {}
  local removed = {}
  for position, write in ipairs(writes) do
    local field = lock_field(write.map, write.key)
    local where = "'" .. write.map .. '/' .. write.key .. "'"
    local version
    if pending[field] ~= nil then
      version = pending[field] and step_version or 0
    else
      version = current_version(write.map, write.key)
    end
    if check and write.condition ~= '' then
      local refusal = condition_refusal(write, version)
      if refusal then return refusal end
    end
    if write.op == 'REFERENCE' then
      local change = tonumber(write.value)
      if check and change > 0 and version == 0 then
        return {'precondition', 'referenced key ' .. where .. ' does not exist', write.map, write.key}
      end
      references[field] = (references[field] or 0) + change
    elseif write.op == 'DELETE' then
      local count = reference_count(write.map, write.key) + (references[field] or 0)
      if check and count > 0 and version ~= 0 then
        return {'precondition', where .. ' is referenced by ' .. count
          .. ' value(s); change or delete them first', write.map, write.key}
      end
      if version ~= 0 then removed[#removed + 1] = position - 1 end
      pending[field] = false
    else
      pending[field] = true
    end
  end
  return nil, removed
end

local function prospective_version(given)
  if given ~= 0 then return given end
  return tonumber(redis.call('HGET', META, 'lsn') or '0') + 1
end

-- Keeps the state a commit at version end_version is about to replace (call it first).
local function keep(map, key, end_version)
  local old = redis.call('HGET', prefix .. 'e:' .. map, key)
  if not old then return end
  local begin = redis.call('HGET', prefix .. 'v:' .. map, key)
  redis.call('ZADD', prefix .. 'h:' .. map .. ':' .. key, end_version, begin .. '|' .. old)
  redis.call('SADD', prefix .. 'hk:' .. map, key)
  redis.call('ZADD', EXPIRING, end_version, map .. '\0' .. key .. '\0' .. end_version)
end

-- Drops the kept states that ended at or before the horizon (what no read may still use), at
-- most FORGET_MAX per step: a step must stay short, or it stalls every client of the server;
-- what is left goes with the next steps.
local FORGET_MAX = 512
local function forget(horizon)
  if horizon <= 0 then return end
  local expired = redis.call('ZRANGEBYSCORE', EXPIRING, '-inf', horizon, 'LIMIT', 0, FORGET_MAX)
  if #expired == 0 then return end
  local floor = tonumber(redis.call('HGET', META, 'floor') or '0')
  for _, member in ipairs(expired) do
    local map, key, ended = string.match(member, '^(.-)%z(.-)%z(%d+)$')
    local states = prefix .. 'h:' .. map .. ':' .. key
    redis.call('ZREMRANGEBYSCORE', states, '-inf', ended)
    if redis.call('EXISTS', states) == 0 then redis.call('SREM', prefix .. 'hk:' .. map, key) end
    if tonumber(ended) > floor then floor = tonumber(ended) end
    redis.call('ZREM', EXPIRING, member)
  end
  redis.call('HSET', META, 'floor', floor)
end

-- Commits from several coordinators reach a partition out of number order (a transaction's
-- commit after a one-phase write with a later number, on other keys), so map:<map> keeps the
-- newest; changes:<map> moves on every change, whatever its version.
local function map_changed(map, version)
  local newest = tonumber(redis.call('HGET', META, 'map:' .. map) or '0')
  if version > newest then redis.call('HSET', META, 'map:' .. map, version) end
  redis.call('HINCRBY', META, 'changes:' .. map, 1)
end

-- The newest version a key was written or deleted at (its value's, or the end of its last kept
-- state; states forgotten ended at or before the horizon, older than any number in flight).
local function newest_version(map, key)
  local current = current_version(map, key)
  local last = redis.call('ZREVRANGE', prefix .. 'h:' .. map .. ':' .. key, 0, 0, 'WITHSCORES')
  if #last > 0 and tonumber(last[2]) > current then return tonumber(last[2]) end
  return current
end

-- A one-phase step whose commit number is older than a key's newest version: another
-- coordinator's commit, numbered later, reached the key first. Applying would put the key's
-- history out of order, so the step refuses before writing and the coordinator takes a new
-- number (grid.errors.StaleVersion). Never seen with one coordinator on the memory backend.
local function stale_refusal(writes, given_version)
  if given_version == 0 then return nil end
  for _, write in ipairs(writes) do
    if write.op ~= 'REFERENCE' and newest_version(write.map, write.key) > given_version then
      return {'stale', "'" .. write.map .. '/' .. write.key .. "' has a newer version than commit "
        .. given_version, write.map, write.key}
    end
  end
  return nil
end

local function install(writes, version)
  local versions = {}
  for _, write in ipairs(writes) do
    if write.op == 'REFERENCE' then
      -- The count changes; the value and its version do not.
      local references = prefix .. 'r:' .. write.map
      if redis.call('HINCRBY', references, write.key, tonumber(write.value)) <= 0 then
        redis.call('HDEL', references, write.key)
      end
      versions[#versions + 1] = current_version(write.map, write.key)
    elseif write.op == 'DELETE' then
      keep(write.map, write.key, version)
      map_changed(write.map, version)
      redis.call('HDEL', prefix .. 'e:' .. write.map, write.key)
      redis.call('HDEL', prefix .. 'v:' .. write.map, write.key)
      versions[#versions + 1] = 0
    else
      keep(write.map, write.key, version)
      map_changed(write.map, version)
      redis.call('HSET', prefix .. 'e:' .. write.map, write.key, write.value)
      redis.call('HSET', prefix .. 'v:' .. write.map, write.key, version)
      versions[#versions + 1] = version
    end
  end
  local highest = tonumber(redis.call('HGET', META, 'version') or '0')
  if version > highest then redis.call('HSET', META, 'version', version) end
  return versions
end

local function next_lsn()
  return redis.call('HINCRBY', META, 'lsn', 1)
end

local function answer(versions, removed)
  return cjson.encode({versions = versions, removed = removed})
end

-- A one-phase step past its commit number's deadline (the number's lease by the store's clock):
-- another coordinator may have released the number, so the step must not apply with it.
local function expired_refusal(deadline)
  if deadline <= 0 then return nil end
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) <= deadline then return nil end
  return {'stale', 'the commit number outlived its lease', '', ''}
end

local function apply_one_phase()
  local request = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  if request ~= '' then
    local previous = redis.call('HGET', OUTCOMES, request)
    if previous then return {'applied', 1, previous} end
  end
  local expired = expired_refusal(tonumber(ARGV[6]))
  if expired then return expired end
  local reads, i = parse_reads(7)
  local writes = parse_writes(i)
  for _, read in ipairs(reads) do
    local refusal = read_refusal(read)
    if refusal then return refusal end
  end
  local modes, order = lock_modes(reads, writes)
  for _, field in ipairs(order) do
    local refusal = lock_refusal(field, modes[field], '')
    if refusal then return refusal end
  end
  local stale = stale_refusal(writes, given_version)
  if stale then return stale end
  local refusal, removed = check_writes(writes, prospective_version(given_version), true)
  if refusal then return refusal end
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  local encoded = answer(install(writes, version), removed)
  if request ~= '' then remember(OUTCOMES, OUTCOME_ORDER, request, encoded) end
  forget(horizon)
  return {'applied', 0, encoded}
end

-- Whether a key is still at the version, with the lock holders and the reference count, that
-- the coordinator read (holders: the JSON it read, '' for none; compared decoded, as it
-- re-encodes them).
local function unchanged(map, key, expected, holders, references)
  if current_version(map, key) ~= expected then return false end
  if reference_count(map, key) ~= references then return false end
  local now = redis.call('HGET', LOCKS, lock_field(map, key))
  if not now then return holders == '' end
  if holders == '' then return false end
  return now == holders or cjson.encode(cjson.decode(now)) == cjson.encode(cjson.decode(holders))
end

-- A one-phase step resolved in Python (grid/redis/hooked.py): applies the resolved entries
-- only if every key's version and lock holders are still what the resolution read.
local function apply_resolved()
  local request = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  if request ~= '' then
    local previous = redis.call('HGET', OUTCOMES, request)
    if previous then return {'applied', 1, previous} end
  end
  local expired = expired_refusal(tonumber(ARGV[6]))
  if expired then return expired end
  local count = tonumber(ARGV[7])
  local i = 8
  for _ = 1, count do
    local map, key, expected, holders = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
    local references = tonumber(ARGV[i + 4])
    i = i + 5
    if not unchanged(map, key, expected, holders, references) then return {'retry'} end
  end
  local writes
  writes, i = parse_writes(i)
  local stale = stale_refusal(writes, given_version)
  if stale then return stale end
  local template = cjson.decode(ARGV[i])
  local removed = cjson.decode(ARGV[i + 1])
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  install(writes, version)
  local versions = {}
  for index, kind in ipairs(template) do versions[index] = kind == 'v' and version or tonumber(kind) end
  local encoded = answer(versions, removed)
  if request ~= '' then remember(OUTCOMES, OUTCOME_ORDER, request, encoded) end
  forget(horizon)
  return {'applied', 0, encoded}
end

-- Takes the locks and keeps the staged writes of a transaction that voted yes.
local function stage(txn, lease, status_partition, durable, order, modes, writes)
  local staged_key = prefix .. 'x:' .. txn
  local locked = {}
  for _, field in ipairs(order) do
    local raw = redis.call('HGET', LOCKS, field)
    local holders = raw and cjson.decode(raw) or {}
    holders[txn] = modes[field]
    redis.call('HSET', LOCKS, field, cjson.encode(holders))
    locked[#locked + 1] = field
  end
  redis.call('HSET', staged_key, 'state', 'prepared', 'lease', lease, 'status_partition', status_partition,
    'durable', durable, 'locks', cjson.encode(locked), 'n', #writes)
  for index, write in ipairs(writes) do
    redis.call('HSET', staged_key, 'op.' .. index, write.op, 'map.' .. index, write.map,
      'key.' .. index, write.key, 'value.' .. index, write.value)
  end
  redis.call('SADD', STAGED, txn)
  if durable == '1' then next_lsn() end
  return {'yes'}
end

local function prepare()
  local txn = ARGV[3]
  local lease, status_partition, durable = ARGV[4], ARGV[5], ARGV[6]
  local staged_key = prefix .. 'x:' .. txn
  if redis.call('SISMEMBER', STAGED, txn) == 1 then return {'yes'} end
  local decided = redis.call('HGET', DECIDED, txn)
  if decided then return {'no', 'the transaction was already ' .. decided .. ' here'} end
  local reads, i = parse_reads(7)
  local writes = parse_writes(i)
  local modes, order = lock_modes(reads, writes)
  for _, field in ipairs(order) do
    local refusal = lock_refusal(field, modes[field], txn)
    if refusal then return {'no', refusal[2], refusal[1], refusal[3], refusal[4]} end
  end
  for _, read in ipairs(reads) do
    local refusal = read_refusal(read)
    if refusal then return {'no', refusal[2], refusal[1], refusal[3], refusal[4]} end
  end
  local refusal = check_writes(writes, prospective_version(0), true)
  if refusal then return {'no', refusal[2], refusal[1], refusal[3], refusal[4]} end
  return stage(txn, lease, status_partition, durable, order, modes, writes)
end

-- A prepare resolved in Python (grid/redis/hooked.py: increments, appends, sketch adds): stages
-- the writes with the lock modes the coordinator computed, only if every key's version and lock
-- holders are still what it read.
local function prepare_resolved()
  local txn = ARGV[3]
  local lease, status_partition, durable = ARGV[4], ARGV[5], ARGV[6]
  if redis.call('SISMEMBER', STAGED, txn) == 1 then return {'yes'} end
  local decided = redis.call('HGET', DECIDED, txn)
  if decided then return {'no', 'the transaction was already ' .. decided .. ' here'} end
  local count = tonumber(ARGV[7])
  local i = 8
  local modes, order = {}, {}
  for _ = 1, count do
    local map, key = ARGV[i], ARGV[i + 1]
    if not unchanged(map, key, tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])) then
      return {'retry'}
    end
    local field = lock_field(map, key)
    order[#order + 1] = field
    modes[field] = ARGV[i + 5]
    i = i + 6
  end
  local writes = parse_writes(i)
  return stage(txn, lease, status_partition, durable, order, modes, writes)
end

local function release(txn, staged_key)
  local locked = cjson.decode(redis.call('HGET', staged_key, 'locks') or '[]')
  for _, field in ipairs(locked) do
    local raw = redis.call('HGET', LOCKS, field)
    if raw then
      local holders = cjson.decode(raw)
      holders[txn] = nil
      if next(holders) == nil then
        redis.call('HDEL', LOCKS, field)
      else
        redis.call('HSET', LOCKS, field, cjson.encode(holders))
      end
    end
  end
  redis.call('DEL', staged_key)
  redis.call('SREM', STAGED, txn)
end

local function pre_commit()
  local txn = ARGV[3]
  local staged_key = prefix .. 'x:' .. txn
  local state = redis.call('HGET', staged_key, 'state')
  if not state then return {'ack', 0} end
  if state ~= 'pre_committed' then
    redis.call('HSET', staged_key, 'state', 'pre_committed')
    next_lsn()
  end
  return {'ack', 1}
end

local function commit()
  local txn = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  local staged_key = prefix .. 'x:' .. txn
  if redis.call('SISMEMBER', STAGED, txn) == 0 then return {'ack', 0} end
  local staged = redis.call('HGETALL', staged_key)
  local fields = {}
  for index = 1, #staged, 2 do fields[staged[index]] = staged[index + 1] end
  local writes = {}
  for index = 1, tonumber(fields.n) do
    writes[#writes + 1] = {op = fields['op.' .. index], map = fields['map.' .. index],
      key = fields['key.' .. index], value = fields['value.' .. index], condition = ''}
    -- Increments, appends and sketch adds are resolved by the coordinator (commit_resolved).
    local op = writes[#writes].op
    if op ~= 'PUT' and op ~= 'DELETE' and op ~= 'REFERENCE' then return {'hooked'} end
  end
  local _, removed = check_writes(writes, prospective_version(given_version), false)
  release(txn, staged_key)
  remember(DECIDED, DECIDED_ORDER, txn, 'committed')
  if fields.durable ~= '1' then return {'ack', 1} end
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  local encoded = answer(install(writes, version), removed)
  remember(OUTCOMES, OUTCOME_ORDER, txn, encoded)
  forget(horizon)
  return {'applied', 0, encoded}
end

-- A commit whose staged writes the coordinator resolved (grid/redis/hooked.py): applies them
-- only if every key is still at the version the resolution read.
local function commit_resolved()
  local txn = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  local staged_key = prefix .. 'x:' .. txn
  if redis.call('SISMEMBER', STAGED, txn) == 0 then return {'ack', 0} end
  local count = tonumber(ARGV[6])
  local i = 7
  for _ = 1, count do
    if current_version(ARGV[i], ARGV[i + 1]) ~= tonumber(ARGV[i + 2]) then return {'retry'} end
    i = i + 3
  end
  local writes
  writes, i = parse_writes(i)
  local template = cjson.decode(ARGV[i])
  local removed = cjson.decode(ARGV[i + 1])
  local durable = redis.call('HGET', staged_key, 'durable')
  release(txn, staged_key)
  remember(DECIDED, DECIDED_ORDER, txn, 'committed')
  if durable ~= '1' then return {'ack', 1} end
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  install(writes, version)
  local versions = {}
  for index, kind in ipairs(template) do versions[index] = kind == 'v' and version or tonumber(kind) end
  local encoded = answer(versions, removed)
  remember(OUTCOMES, OUTCOME_ORDER, txn, encoded)
  forget(horizon)
  return {'applied', 0, encoded}
end

local function abort()
  local txn = ARGV[3]
  local staged_key = prefix .. 'x:' .. txn
  if redis.call('SISMEMBER', STAGED, txn) == 0 then
    -- An abort that overtook its prepare: remember it, so the prepare votes no.
    if not redis.call('HGET', DECIDED, txn) then remember(DECIDED, DECIDED_ORDER, txn, 'aborted') end
    return {'ack', 0}
  end
  local durable = redis.call('HGET', staged_key, 'durable')
  release(txn, staged_key)
  remember(DECIDED, DECIDED_ORDER, txn, 'aborted')
  if durable == '1' then next_lsn() end
  return {'ack', 1}
end

local function status_reply(txn, swapped)
  local raw = redis.call('HGET', STATUSES, txn)
  if not raw then return {'status', '', '[]', 0, 0} end
  local record = cjson.decode(raw)
  return {'status', record.state, cjson.encode(record.participants), record.lease, swapped}
end

-- Keeps <p>tu and <p>tf in line with a status record just written (or deleted: record nil).
local function index_status(txn, record)
  if record and record.state ~= 'committed' and record.state ~= 'aborted' then
    redis.call('SADD', UNDECIDED_STATUSES, txn)
    redis.call('ZREM', DECIDED_STATUSES, txn)
    return
  end
  redis.call('SREM', UNDECIDED_STATUSES, txn)
  if record then
    redis.call('ZADD', DECIDED_STATUSES, record.updated, txn)
  else
    redis.call('ZREM', DECIDED_STATUSES, txn)
  end
end

-- Builds the status indexes once for records written before they existed (a namespace
-- created by an earlier version); a no-op once <p>m says they are built.
local function index_statuses()
  if redis.call('HGET', META, 'status_index') == '1' then return {'ack', 0} end
  local all = redis.call('HGETALL', STATUSES)
  for i = 1, #all, 2 do index_status(all[i], cjson.decode(all[i + 1])) end
  redis.call('HSET', META, 'status_index', '1')
  return {'ack', 1}
end

local function create_status()
  local txn = ARGV[3]
  if redis.call('HEXISTS', STATUSES, txn) == 1 then return status_reply(txn, 0) end
  local record = {state = 'pending', participants = cjson.decode(ARGV[4]), lease = tonumber(ARGV[5]),
    updated = tonumber(ARGV[6])}
  redis.call('HSET', STATUSES, txn, cjson.encode(record))
  index_status(txn, record)
  next_lsn()
  return status_reply(txn, 1)
end

local function cas_status()
  local txn, expected, new, now = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
  local raw = redis.call('HGET', STATUSES, txn)
  if not raw then return status_reply(txn, 0) end
  local record = cjson.decode(raw)
  if record.state ~= expected then return status_reply(txn, 0) end
  record.state = new
  record.updated = now
  local lease = tonumber(ARGV[7] or '0')
  if lease > 0 then record.lease = lease end
  redis.call('HSET', STATUSES, txn, cjson.encode(record))
  index_status(txn, record)
  next_lsn()
  return status_reply(txn, 1)
end

local function forget_status()
  local txn = ARGV[3]
  local raw = redis.call('HGET', STATUSES, txn)
  if not raw then return {'ack', 0} end
  local state = cjson.decode(raw).state
  if state ~= 'committed' and state ~= 'aborted' then return {'ack', 1} end
  redis.call('HDEL', STATUSES, txn)
  index_status(txn, nil)
  next_lsn()
  return {'ack', 1}
end

-- The committed value and version of many keys of one map, read at one instant: ARGV[3] the
-- map, then the keys; returns the map's newest version here, then value, version for each
-- key (false, 0 where absent).
local function read_many()
  local map = ARGV[3]
  local found = {tonumber(redis.call('HGET', META, 'map:' .. map) or '0')}
  for i = 4, #ARGV do
    local value = redis.call('HGET', prefix .. 'e:' .. map, ARGV[i])
    found[#found + 1] = value
    found[#found + 1] = value and current_version(map, ARGV[i]) or 0
  end
  return found
end

local function read_outcome()
  local previous = redis.call('HGET', OUTCOMES, ARGV[3])
  if not previous then return {'ack', 0} end
  return {'applied', 1, previous}
end

local function drop_map()
  local map = ARGV[3]
  local locks = redis.call('HKEYS', LOCKS)
  for _, field in ipairs(locks) do
    if string.sub(field, 1, #map + 1) == map .. '\0' then
      return {'precondition', "map '" .. map .. "' has keys locked by transactions in flight", map, ''}
    end
  end
  for _, key in ipairs(redis.call('SMEMBERS', prefix .. 'hk:' .. map)) do
    redis.call('DEL', prefix .. 'h:' .. map .. ':' .. key)
  end
  -- UNLINK: a big map's hashes are freed by Redis in the background, not inside this step.
  redis.call('UNLINK', prefix .. 'e:' .. map, prefix .. 'v:' .. map, prefix .. 'hk:' .. map,
    prefix .. 'r:' .. map)
  redis.call('HDEL', META, 'map:' .. map)
  -- Counted on, never reset: a map made again under the name has no image cached under it.
  redis.call('HINCRBY', META, 'changes:' .. map, 1)
  next_lsn()
  return {'ack', 1}
end

local function forget_versions()
  forget(tonumber(ARGV[3]))
  return {'ack', 1}
end

local steps = {
  apply = apply_one_phase, apply_resolved = apply_resolved, prepare = prepare,
  prepare_resolved = prepare_resolved, commit_resolved = commit_resolved, pre_commit = pre_commit, commit = commit,
  abort = abort, create_status = create_status, cas_status = cas_status,
  forget_status = forget_status, read_outcome = read_outcome, drop_map = drop_map,
  forget_versions = forget_versions, read_many = read_many, index_statuses = index_statuses,
}
local run = steps[step]
if not run then return redis.error_reply('unknown step ' .. tostring(step)) end
return run()
