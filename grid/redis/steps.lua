-- Shoal's participant steps on Redis: every step of one partition is one call of entry() (the
-- function of a library, FCALL; a script, EVALSHA, on a Redis without functions:
-- grid/redis/library.py), so it is atomic (Redis runs it alone) and every coordinator sees the
-- same partition. A library is loaded once and a call runs only its step, where a script first
-- builds every function below again.
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

-- Set by each call (the function at the end of the library): the keys and arguments, the
-- partition's prefix and the step, and the names of the partition's own records.
local ARGV, prefix, step
local META, LOCKS, OUTCOMES, DECIDED, STAGED, STATUSES, EXPIRING
local OUTCOME_ORDER, DECIDED_ORDER, UNDECIDED_STATUSES, DECIDED_STATUSES, STATUS_KEYS
-- How many answers and decisions a partition remembers for retries, as the memory participant.
local REMEMBERED_MAX = 4096

-- Every key a step touches is in KEYS (grid/redis/layout.py says which for each step). Redis
-- Cluster checks declared keys before the script runs: while the partition's slot migrates, a
-- step whose keys are not all on one node is redirected (ASK) or refused (TRYAGAIN) before it
-- runs, never stopped half-way. Inside the script Redis checks each command again: on the node a
-- slot migrates from, a command on a key that is not there (one this step deleted) fails the
-- script after its first writes. So every command goes through call(), which refuses an
-- undeclared key and a key touched after a command that may have deleted it (a step writes a key,
-- then deletes from it last). Strict everywhere, also on one Redis, so the conformance suite
-- catches a step that breaks the rule.
local declared, ended
local DELETING = {HDEL = true, SREM = true, ZREM = true, ZREMRANGEBYSCORE = true, LTRIM = true,
  DEL = true, UNLINK = true}

local function call(command, key, ...)
  if not declared[key] then error('shoal step ' .. step .. ' touched undeclared key ' .. key) end
  if ended[key] then error('shoal step ' .. step .. ' touched ' .. key .. ' after deleting from it') end
  if DELETING[command] then ended[key] = true end
  return redis.call(command, key, ...)
end

-- The keys of a list that KEYS lacks: the step answers {'redeclare', ...} before any write, and
-- the coordinator calls it again with them (keys it could not know: a staged transaction's
-- writes, the states a forget drops).
local function undeclared(keys)
  local missing, seen = {}, {}
  for _, key in ipairs(keys) do
    if not declared[key] and not seen[key] then
      seen[key] = true
      missing[#missing + 1] = key
    end
  end
  return missing
end

local function redeclare(missing)
  return {'redeclare', unpack(missing)}
end

-- Called by every step before its first write with every key it may write or read from then
-- on: a key the coordinator failed to declare fails the step before it changed anything.
local function require_keys(keys)
  local missing = undeclared(keys)
  if #missing > 0 then
    error('shoal step ' .. step .. ' needs undeclared keys: ' .. table.concat(missing, ' '))
  end
end

local function entries_key(map) return prefix .. 'e:' .. map end
local function versions_key(map) return prefix .. 'v:' .. map end
local function references_key(map) return prefix .. 'r:' .. map end
local function kept_keys_key(map) return prefix .. 'hk:' .. map end
local function states_key(map, key) return prefix .. 'h:' .. map .. ':' .. key end

-- The keys writing (map, key) touches: entries, versions, references, kept states.
local function write_keys(keys, map, key)
  keys[#keys + 1] = entries_key(map)
  keys[#keys + 1] = versions_key(map)
  keys[#keys + 1] = references_key(map)
  keys[#keys + 1] = kept_keys_key(map)
  keys[#keys + 1] = states_key(map, key)
end

local function keys_of_writes(keys, writes)
  for _, write in ipairs(writes) do write_keys(keys, write.map, write.key) end
  return keys
end

-- Remembers field -> value in a hash, forgetting the oldest beyond REMEMBERED_MAX.
local function remember(hash, order, field, value)
  if call('HSETNX', hash, field, value) == 0 then
    call('HSET', hash, field, value)
    return
  end
  local length = call('RPUSH', order, field)
  if length > REMEMBERED_MAX then
    local over = length - REMEMBERED_MAX
    local dropped = call('LRANGE', order, 0, over - 1)
    call('LTRIM', order, over, -1)
    call('HDEL', hash, unpack(dropped))
  end
end

local COMPATIBLE = {S = {S = true, R = true}, I = {I = true, R = true}, R = {S = true, I = true, R = true}, X = {}}

local function lock_field(map, key) return map .. '\0' .. key end

local function current_version(map, key)
  return tonumber(call('HGET', versions_key(map), key) or '0')
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
  return tonumber(call('HGET', references_key(map), key) or '0')
end

-- nil when free for txn (or for a one-phase write when txn is ''), else the refusal.
local function lock_refusal(field, mode, txn)
  local raw = call('HGET', LOCKS, field)
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
  return tonumber(call('HGET', META, 'lsn') or '0') + 1
end

-- Drops the kept states of the given keys that ended at or before the horizon (what no read may
-- still use). A step forgets the states of the keys it writes (declared with them); states of
-- keys no step writes go with ForgetVersions (forget_expiring). ends: states key -> the newest
-- end to drop; each states key, EXPIRING and each hk:<map> is deleted from once, last.
local function drop_states(ends, members, floor)
  local emptied = {}
  for states, upto in pairs(ends) do
    local count = call('ZCARD', states.key)
    if count > 0 and call('ZREMRANGEBYSCORE', states.key, '-inf', upto) == count then
      emptied[states.map] = emptied[states.map] or {}
      local list = emptied[states.map]
      list[#list + 1] = states.entry
    end
    if upto > floor then floor = upto end
  end
  if #members == 0 then return end
  call('ZREM', EXPIRING, unpack(members))
  for map, keys in pairs(emptied) do call('SREM', kept_keys_key(map), unpack(keys)) end
  call('HSET', META, 'floor', floor)
end

local function forget_written(targets, horizon)
  if horizon <= 0 then return end
  local ends, members = {}, {}
  local floor = tonumber(call('HGET', META, 'floor') or '0')
  for _, target in ipairs(targets) do
    local states = states_key(target.map, target.key)
    local old = call('ZRANGEBYSCORE', states, '-inf', horizon, 'WITHSCORES')
    if #old > 0 then
      local upto = 0
      for i = 2, #old, 2 do
        local ended = tonumber(old[i])
        members[#members + 1] = target.map .. '\0' .. target.key .. '\0' .. old[i]
        if ended > upto then upto = ended end
      end
      ends[{key = states, map = target.map, entry = target.key}] = upto
    end
  end
  drop_states(ends, members, floor)
end

-- Drops the oldest kept states that ended at or before the horizon, whichever keys they are of,
-- at most FORGET_MAX per call: a step must stay short, or it stalls every client of the server;
-- what is left goes with the next calls. Their keys are known only here: the first call answers
-- redeclare with them; a final call (the coordinator gave up redeclaring) drops those declared.
local FORGET_MAX = 512
local function forget_expiring(horizon, final)
  if horizon <= 0 then return nil end
  local expired = call('ZRANGEBYSCORE', EXPIRING, '-inf', horizon, 'LIMIT', 0, FORGET_MAX)
  if #expired == 0 then return nil end
  local parsed, needed = {}, {}
  for _, member in ipairs(expired) do
    local map, key, ended = string.match(member, '^(.-)%z(.-)%z(%d+)$')
    parsed[#parsed + 1] = {member = member, map = map, key = key, ended = tonumber(ended)}
    needed[#needed + 1] = states_key(map, key)
    needed[#needed + 1] = kept_keys_key(map)
  end
  local missing = undeclared(needed)
  if #missing > 0 and not final then return redeclare(missing) end
  require_keys({META})
  local by_key, ends, members = {}, {}, {}
  for _, state in ipairs(parsed) do
    local states = states_key(state.map, state.key)
    if declared[states] and declared[kept_keys_key(state.map)] then
      local handle = by_key[states]
      if not handle then
        handle = {key = states, map = state.map, entry = state.key}
        by_key[states] = handle
        ends[handle] = state.ended
      elseif state.ended > ends[handle] then
        ends[handle] = state.ended
      end
      members[#members + 1] = state.member
    end
  end
  drop_states(ends, members, tonumber(call('HGET', META, 'floor') or '0'))
  return nil
end

-- Commits from several coordinators reach a partition out of number order (a transaction's
-- commit after a one-phase write with a later number, on other keys), so map:<map> keeps the
-- newest; changes:<map> moves on every change, whatever its version.
local function map_changed(map, version)
  local newest = tonumber(call('HGET', META, 'map:' .. map) or '0')
  if version > newest then call('HSET', META, 'map:' .. map, version) end
  call('HINCRBY', META, 'changes:' .. map, 1)
end

-- The newest version a key was written or deleted at (its value's, or the end of its last kept
-- state; states forgotten ended at or before the horizon, older than any number in flight).
local function newest_version(map, key)
  local current = current_version(map, key)
  local last = call('ZREVRANGE', states_key(map, key), 0, 0, 'WITHSCORES')
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

-- Applies writes at a version: reads first, then every creation and update, then every
-- deletion, each hash deleted from once (see call()). A key written twice in one step keeps only
-- the state it had before the step (a state between two writes of one step is never visible).
-- Returns the versions of the answer and the distinct keys written (whose states to forget).
local function install(writes, version)
  local versions, finals, order, references = {}, {}, {}, {}
  local function target(map, key)
    local field = lock_field(map, key)
    local found = finals[field]
    if not found then
      found = {map = map, key = key}
      finals[field] = found
      order[#order + 1] = found
    end
    return found
  end
  for _, write in ipairs(writes) do
    local final = target(write.map, write.key)
    if write.op == 'REFERENCE' then
      -- The count changes; the value and its version do not.
      final.reference = (final.reference or 0) + tonumber(write.value)
      if final.written == nil then
        versions[#versions + 1] = current_version(write.map, write.key)
      else
        versions[#versions + 1] = final.written and version or 0
      end
    else
      if final.written == nil then
        final.old = call('HGET', entries_key(write.map), write.key)
        if final.old then final.begin = call('HGET', versions_key(write.map), write.key) end
      end
      final.written = write.op ~= 'DELETE'
      final.value = write.value
      versions[#versions + 1] = final.written and version or 0
    end
  end
  -- Reads: reference counts; then creations and updates.
  local forgets, deletes, unreferenced = {}, {}, {}
  for _, final in ipairs(order) do
    if final.reference then
      final.count = reference_count(final.map, final.key) + final.reference
    end
  end
  local sets = {}
  local function add(list_of, name, ...)
    list_of[name] = list_of[name] or {}
    local list = list_of[name]
    for _, item in ipairs({...}) do list[#list + 1] = item end
  end
  for _, final in ipairs(order) do
    if final.written ~= nil then
      forgets[#forgets + 1] = final
      if final.old then
        -- Keeps the state this commit replaces.
        call('ZADD', states_key(final.map, final.key), version, final.begin .. '|' .. final.old)
        call('SADD', kept_keys_key(final.map), final.key)
        call('ZADD', EXPIRING, version, final.map .. '\0' .. final.key .. '\0' .. version)
      end
      map_changed(final.map, version)
      if final.written then
        add(sets, entries_key(final.map), final.key, final.value)
        add(sets, versions_key(final.map), final.key, version)
      else
        add(deletes, entries_key(final.map), final.key)
        add(deletes, versions_key(final.map), final.key)
      end
    end
    if final.count then
      if final.count > 0 then
        add(sets, references_key(final.map), final.key, final.count)
      else
        add(unreferenced, references_key(final.map), final.key)
      end
    end
  end
  for key, pairs_list in pairs(sets) do call('HSET', key, unpack(pairs_list)) end
  local highest = tonumber(call('HGET', META, 'version') or '0')
  if version > highest then call('HSET', META, 'version', version) end
  -- Deletions last.
  for key, fields in pairs(deletes) do call('HDEL', key, unpack(fields)) end
  for key, fields in pairs(unreferenced) do call('HDEL', key, unpack(fields)) end
  return versions, forgets
end

local function next_lsn()
  return call('HINCRBY', META, 'lsn', 1)
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
    local previous = call('HGET', OUTCOMES, request)
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
  require_keys(keys_of_writes({META, OUTCOMES, OUTCOME_ORDER, EXPIRING}, writes))
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  local versions, written = install(writes, version)
  local encoded = answer(versions, removed)
  forget_written(written, horizon)
  if request ~= '' then remember(OUTCOMES, OUTCOME_ORDER, request, encoded) end
  return {'applied', 0, encoded}
end

-- Whether a key is still at the version, with the lock holders and the reference count, that
-- the coordinator read (holders: the JSON it read, '' for none; compared decoded, as it
-- re-encodes them).
local function unchanged(map, key, expected, holders, references)
  if current_version(map, key) ~= expected then return false end
  if reference_count(map, key) ~= references then return false end
  local now = call('HGET', LOCKS, lock_field(map, key))
  if not now then return holders == '' end
  if holders == '' then return false end
  return now == holders or cjson.encode(cjson.decode(now)) == cjson.encode(cjson.decode(holders))
end

local function versions_of(template, version)
  local versions = {}
  for index, kind in ipairs(template) do versions[index] = kind == 'v' and version or tonumber(kind) end
  return versions
end

-- A one-phase step resolved in Python (grid/redis/hooked.py): applies the resolved entries
-- only if every key's version and lock holders are still what the resolution read.
local function apply_resolved()
  local request = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  if request ~= '' then
    local previous = call('HGET', OUTCOMES, request)
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
  require_keys(keys_of_writes({META, OUTCOMES, OUTCOME_ORDER, EXPIRING}, writes))
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  local _, written = install(writes, version)
  local encoded = answer(versions_of(template, version), removed)
  forget_written(written, horizon)
  if request ~= '' then remember(OUTCOMES, OUTCOME_ORDER, request, encoded) end
  return {'applied', 0, encoded}
end

-- Takes the locks and keeps the staged writes of a transaction that voted yes.
local function stage(txn, lease, status_partition, durable, order, modes, writes)
  local staged_key = prefix .. 'x:' .. txn
  require_keys({LOCKS, STAGED, META, staged_key})
  local locked, updates = {}, {}
  for _, field in ipairs(order) do
    local raw = call('HGET', LOCKS, field)
    local holders = raw and cjson.decode(raw) or {}
    holders[txn] = modes[field]
    updates[#updates + 1] = field
    updates[#updates + 1] = cjson.encode(holders)
    locked[#locked + 1] = field
  end
  if #updates > 0 then call('HSET', LOCKS, unpack(updates)) end
  local record = {'state', 'prepared', 'lease', lease, 'status_partition', status_partition,
    'durable', durable, 'locks', cjson.encode(locked), 'n', #writes}
  for index, write in ipairs(writes) do
    local n = #record
    record[n + 1], record[n + 2] = 'op.' .. index, write.op
    record[n + 3], record[n + 4] = 'map.' .. index, write.map
    record[n + 5], record[n + 6] = 'key.' .. index, write.key
    record[n + 7], record[n + 8] = 'value.' .. index, write.value
  end
  call('HSET', staged_key, unpack(record))
  call('SADD', STAGED, txn)
  if durable == '1' then next_lsn() end
  return {'yes'}
end

local function prepare()
  local txn = ARGV[3]
  local lease, status_partition, durable = ARGV[4], ARGV[5], ARGV[6]
  if call('SISMEMBER', STAGED, txn) == 1 then return {'yes'} end
  local decided = call('HGET', DECIDED, txn)
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
  if call('SISMEMBER', STAGED, txn) == 1 then return {'yes'} end
  local decided = call('HGET', DECIDED, txn)
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

-- Releases a staged transaction's locks and record: every holder read first, then the updated
-- holders written, then the emptied fields and the record deleted.
local function release(txn, staged_key, locks_json)
  local locked = cjson.decode(locks_json or '[]')
  local updates, emptied = {}, {}
  for _, field in ipairs(locked) do
    local raw = call('HGET', LOCKS, field)
    if raw then
      local holders = cjson.decode(raw)
      holders[txn] = nil
      if next(holders) == nil then
        emptied[#emptied + 1] = field
      else
        updates[#updates + 1] = field
        updates[#updates + 1] = cjson.encode(holders)
      end
    end
  end
  if #updates > 0 then call('HSET', LOCKS, unpack(updates)) end
  if #emptied > 0 then call('HDEL', LOCKS, unpack(emptied)) end
  call('DEL', staged_key)
  call('SREM', STAGED, txn)
end

local function pre_commit()
  local txn = ARGV[3]
  local staged_key = prefix .. 'x:' .. txn
  local state = call('HGET', staged_key, 'state')
  if not state then return {'ack', 0} end
  require_keys({META})
  if state ~= 'pre_committed' then
    call('HSET', staged_key, 'state', 'pre_committed')
    next_lsn()
  end
  return {'ack', 1}
end

local function commit()
  local txn = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  local staged_key = prefix .. 'x:' .. txn
  if call('SISMEMBER', STAGED, txn) == 0 then return {'ack', 0} end
  local staged = call('HGETALL', staged_key)
  local fields = {}
  for index = 1, #staged, 2 do fields[staged[index]] = staged[index + 1] end
  local writes = {}
  local needed = {META, LOCKS, DECIDED, DECIDED_ORDER, OUTCOMES, OUTCOME_ORDER, EXPIRING}
  for index = 1, tonumber(fields.n) do
    writes[#writes + 1] = {op = fields['op.' .. index], map = fields['map.' .. index],
      key = fields['key.' .. index], value = fields['value.' .. index], condition = ''}
    -- Increments, appends and sketch adds are resolved by the coordinator (commit_resolved).
    local op = writes[#writes].op
    if op ~= 'PUT' and op ~= 'DELETE' and op ~= 'REFERENCE' then return {'hooked'} end
    write_keys(needed, writes[#writes].map, writes[#writes].key)
  end
  -- A coordinator that did not prepare the transaction (a sweeper) learns its keys here.
  local missing = undeclared(needed)
  if #missing > 0 then return redeclare(missing) end
  local _, removed = check_writes(writes, prospective_version(given_version), false)
  release(txn, staged_key, fields.locks)
  remember(DECIDED, DECIDED_ORDER, txn, 'committed')
  if fields.durable ~= '1' then return {'ack', 1} end
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  local versions, written = install(writes, version)
  local encoded = answer(versions, removed)
  forget_written(written, horizon)
  remember(OUTCOMES, OUTCOME_ORDER, txn, encoded)
  return {'applied', 0, encoded}
end

-- A commit whose staged writes the coordinator resolved (grid/redis/hooked.py): applies them
-- only if every key is still at the version the resolution read.
local function commit_resolved()
  local txn = ARGV[3]
  local given_version = tonumber(ARGV[4])
  local horizon = tonumber(ARGV[5])
  local staged_key = prefix .. 'x:' .. txn
  if call('SISMEMBER', STAGED, txn) == 0 then return {'ack', 0} end
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
  local durable, locks = unpack(call('HMGET', staged_key, 'durable', 'locks'))
  require_keys(keys_of_writes({META, LOCKS, DECIDED, DECIDED_ORDER, OUTCOMES, OUTCOME_ORDER, EXPIRING}, writes))
  release(txn, staged_key, locks)
  remember(DECIDED, DECIDED_ORDER, txn, 'committed')
  if durable ~= '1' then return {'ack', 1} end
  local lsn = next_lsn()
  local version = given_version ~= 0 and given_version or lsn
  local _, written = install(writes, version)
  local encoded = answer(versions_of(template, version), removed)
  forget_written(written, horizon)
  remember(OUTCOMES, OUTCOME_ORDER, txn, encoded)
  return {'applied', 0, encoded}
end

local function abort()
  local txn = ARGV[3]
  local staged_key = prefix .. 'x:' .. txn
  require_keys({STAGED, DECIDED, DECIDED_ORDER, LOCKS, META, staged_key})
  if call('SISMEMBER', STAGED, txn) == 0 then
    -- An abort that overtook its prepare: remember it, so the prepare votes no.
    if not call('HGET', DECIDED, txn) then remember(DECIDED, DECIDED_ORDER, txn, 'aborted') end
    return {'ack', 0}
  end
  local durable, locks = unpack(call('HMGET', staged_key, 'durable', 'locks'))
  release(txn, staged_key, locks)
  remember(DECIDED, DECIDED_ORDER, txn, 'aborted')
  if durable == '1' then next_lsn() end
  return {'ack', 1}
end

local function status_reply(record, swapped)
  if not record then return {'status', '', '[]', 0, 0} end
  return {'status', record.state, cjson.encode(record.participants), record.lease, swapped}
end


local function stored_status(txn)
  local raw = call('HGET', STATUSES, txn)
  return raw and cjson.decode(raw) or nil
end

-- Keeps <p>tu and <p>tf in line with a status record just written (or deleted: record nil).
local function index_status(txn, record)
  if record and record.state ~= 'committed' and record.state ~= 'aborted' then
    call('SADD', UNDECIDED_STATUSES, txn)
    call('ZREM', DECIDED_STATUSES, txn)
    return
  end
  if record then
    call('ZADD', DECIDED_STATUSES, record.updated, txn)
  else
    call('ZREM', DECIDED_STATUSES, txn)
  end
  call('SREM', UNDECIDED_STATUSES, txn)
end

-- Builds the status indexes once for records written before they existed (a namespace
-- created by an earlier version); a no-op once <p>m says they are built.
local function index_statuses()
  require_keys(STATUS_KEYS)
  if call('HGET', META, 'status_index') == '1' then return {'ack', 0} end
  local all = call('HGETALL', STATUSES)
  local undecided, decided, undecided_txns, decided_txns = {}, {}, {}, {}
  for i = 1, #all, 2 do
    local record = cjson.decode(all[i + 1])
    if record.state ~= 'committed' and record.state ~= 'aborted' then
      undecided[#undecided + 1] = all[i]
      undecided_txns[#undecided_txns + 1] = all[i]
    else
      decided[#decided + 1] = record.updated
      decided[#decided + 1] = all[i]
      decided_txns[#decided_txns + 1] = all[i]
    end
  end
  if #undecided > 0 then call('SADD', UNDECIDED_STATUSES, unpack(undecided)) end
  if #decided > 0 then call('ZADD', DECIDED_STATUSES, unpack(decided)) end
  if #decided_txns > 0 then call('SREM', UNDECIDED_STATUSES, unpack(decided_txns)) end
  if #undecided_txns > 0 then call('ZREM', DECIDED_STATUSES, unpack(undecided_txns)) end
  call('HSET', META, 'status_index', '1')
  return {'ack', 1}
end

local function create_status()
  require_keys(STATUS_KEYS)
  local txn = ARGV[3]
  local found = stored_status(txn)
  if found then return status_reply(found, 0) end
  local record = {state = 'pending', participants = cjson.decode(ARGV[4]), lease = tonumber(ARGV[5]),
    updated = tonumber(ARGV[6])}
  call('HSET', STATUSES, txn, cjson.encode(record))
  index_status(txn, record)
  next_lsn()
  return status_reply(record, 1)
end

local function cas_status()
  require_keys(STATUS_KEYS)
  local txn, expected, new, now = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
  local record = stored_status(txn)
  if not record then return status_reply(nil, 0) end
  if record.state ~= expected then return status_reply(record, 0) end
  record.state = new
  record.updated = now
  local lease = tonumber(ARGV[7] or '0')
  if lease > 0 then record.lease = lease end
  call('HSET', STATUSES, txn, cjson.encode(record))
  index_status(txn, record)
  next_lsn()
  return status_reply(record, 1)
end

local function forget_status()
  require_keys(STATUS_KEYS)
  local txn = ARGV[3]
  local record = stored_status(txn)
  if not record then return {'ack', 0} end
  if record.state ~= 'committed' and record.state ~= 'aborted' then return {'ack', 1} end
  call('HDEL', STATUSES, txn)
  index_status(txn, nil)
  next_lsn()
  return {'ack', 1}
end

-- The committed value and version of many keys of one map, read at one instant: ARGV[3] the
-- map, then the keys; returns the map's newest version here, then value, version for each
-- key (false, 0 where absent).
local function read_many()
  local map = ARGV[3]
  local found = {tonumber(call('HGET', META, 'map:' .. map) or '0')}
  for i = 4, #ARGV do
    local value = call('HGET', entries_key(map), ARGV[i])
    found[#found + 1] = value
    found[#found + 1] = value and current_version(map, ARGV[i]) or 0
  end
  return found
end

-- One key as of a version, read at one instant (grid/redis/partition.py get_at): its value and
-- version, the map's newest version here, the floor, and its first kept state ending after it.
local function read_at()
  local map, key, version = ARGV[3], ARGV[4], ARGV[5]
  local value = call('HGET', entries_key(map), key)
  local latest = call('HGET', versions_key(map), key)
  local meta = call('HMGET', META, 'map:' .. map, 'floor')
  local states = call('ZRANGEBYSCORE', states_key(map, key), '(' .. version, '+inf', 'LIMIT', 0, 1)
  return {value, latest, meta[1], meta[2], states}
end

-- A map's entries in this partition at one instant: values and versions (flat), the map's newest
-- version here, and the keys with kept states.
local function image()
  local map = ARGV[3]
  return {call('HGETALL', entries_key(map)), call('HGETALL', versions_key(map)),
    call('HGET', META, 'map:' .. map), call('SMEMBERS', kept_keys_key(map))}
end

-- The first kept state ending after a version of each given key of a map, and the floor.
local function states_at()
  local map, version = ARGV[3], ARGV[4]
  local found = {}
  for i = 5, #ARGV do
    found[#found + 1] = call('ZRANGEBYSCORE', states_key(map, ARGV[i]), '(' .. version, '+inf', 'LIMIT', 0, 1)
  end
  found[#found + 1] = call('HGET', META, 'floor')
  return found
end

-- What a step resolved in Python reads (grid/redis/hooked.py): per (map, key), its value,
-- version, lock holders and reference count.
local function read_targets()
  local found = {}
  for i = 3, #ARGV, 2 do
    local map, key = ARGV[i], ARGV[i + 1]
    found[#found + 1] = call('HGET', entries_key(map), key)
    found[#found + 1] = call('HGET', versions_key(map), key)
    found[#found + 1] = call('HGET', LOCKS, lock_field(map, key))
    found[#found + 1] = call('HGET', references_key(map), key)
  end
  return found
end

local function read_outcome()
  local previous = call('HGET', OUTCOMES, ARGV[3])
  if not previous then return {'ack', 0} end
  return {'applied', 1, previous}
end

local function drop_map()
  local map = ARGV[3]
  local locks = call('HKEYS', LOCKS)
  for _, field in ipairs(locks) do
    if string.sub(field, 1, #map + 1) == map .. '\0' then
      return {'precondition', "map '" .. map .. "' has keys locked by transactions in flight", map, ''}
    end
  end
  local kept = call('SMEMBERS', kept_keys_key(map))
  local needed = {META, entries_key(map), versions_key(map), references_key(map)}
  for _, key in ipairs(kept) do needed[#needed + 1] = states_key(map, key) end
  local missing = undeclared(needed)
  if #missing > 0 then return redeclare(missing) end
  -- Counted on, never reset: a map made again under the name has no image cached under it.
  call('HINCRBY', META, 'changes:' .. map, 1)
  next_lsn()
  for _, key in ipairs(kept) do call('UNLINK', states_key(map, key)) end
  -- UNLINK: a big map's hashes are freed by Redis in the background, not inside this step.
  call('UNLINK', entries_key(map))
  call('UNLINK', versions_key(map))
  call('UNLINK', kept_keys_key(map))
  call('UNLINK', references_key(map))
  call('HDEL', META, 'map:' .. map)
  return {'ack', 1}
end

local function forget_versions()
  local refused = forget_expiring(tonumber(ARGV[3]), ARGV[4] == '1')
  if refused then return refused end
  return {'ack', 1}
end

local steps = {
  apply = apply_one_phase, apply_resolved = apply_resolved, prepare = prepare,
  prepare_resolved = prepare_resolved, commit_resolved = commit_resolved, pre_commit = pre_commit, commit = commit,
  abort = abort, create_status = create_status, cas_status = cas_status,
  forget_status = forget_status, read_outcome = read_outcome, drop_map = drop_map,
  forget_versions = forget_versions, read_many = read_many, index_statuses = index_statuses,
  read_at = read_at, image = image, states_at = states_at, read_targets = read_targets,
}
-- One call: grid/redis/library.py ends this file with redis.register_function(<name>, entry)
-- (a function library, FCALL) or, where Redis has no functions, with return entry(KEYS, ARGV)
-- (a script, EVALSHA).
local function entry(keys, args)
  ARGV, prefix, step = args, args[1], args[2]
  META, LOCKS, OUTCOMES, DECIDED = prefix .. 'm', prefix .. 'l', prefix .. 'o', prefix .. 'd'
  STAGED, STATUSES, EXPIRING = prefix .. 's', prefix .. 't', prefix .. 'hx'
  OUTCOME_ORDER, DECIDED_ORDER = prefix .. 'oq', prefix .. 'dq'
  UNDECIDED_STATUSES, DECIDED_STATUSES = prefix .. 'tu', prefix .. 'tf'
  STATUS_KEYS = {STATUSES, UNDECIDED_STATUSES, DECIDED_STATUSES, META}
  declared, ended = {}, {}
  for i = 1, #keys do declared[keys[i]] = true end
  local run = steps[step]
  if not run then return redis.error_reply('unknown step ' .. tostring(step)) end
  return run()
end
