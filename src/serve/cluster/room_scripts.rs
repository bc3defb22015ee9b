//! The Lua scripts of rooms (issue 23): each room `Write` of the core and
//! each room message, as the room's shard changes, published in the order
//! it ran them on its channel (`wschat:events`).
//!
//! The key schema (README, "What lives in Redis"), every key of a room
//! under the hash tag `{r:KEY}`, so that a room lives on one shard (KEY is
//! the room's key: `#name`, `@a\nb` for a direct conversation, `#lobby`,
//! which is the home's; see `shards`). Each shard holds these for its own
//! rooms:
//! - `wschat:rooms` set: every room key (the lobby's too, once it has a
//!   topic, a ban or a mute);
//! - `wschat:{r:KEY}:meta` hash: `display`, `owner` (a name key; absent:
//!   none), `invite_only` (`1`/`0`), `topic` (absent: none), `epoch`,
//!   `seq` (the latest entry's; the lobby's is `wschat:meta`'s);
//! - `wschat:{r:KEY}:log` stream: the latest `--room-history` entries
//!   (trimmed `MAXLEN ~`), id `SEQ-0`, fields `n` node and `d` the entry
//!   as JSON `[id, timestamp, username, text, notice]`;
//! - `wschat:{r:KEY}:members` hash: name key → `ROLE` or `ROLE UNTIL` (muted
//!   until, ms); the lobby's: the names muted in it;
//! - `wschat:{r:KEY}:bans` hash: name key → until (ms), or "" for good;
//! - `wschat:{r:KEY}:invites` set of name keys;
//! - `wschat:{r:KEY}:reads` hash: name key → the last `seq` read;
//! - `wschat:{r:#lobby}:left` set: the names that left the lobby;
//! - `wschat:{u:NAME}:rooms` set: the rooms (of this shard) a name is tied
//!   to (member, invited, read marker, owner, party of a direct
//!   conversation, left the lobby), so that a released name takes its rows
//!   with it without a scan.
//!
//! A name is released (its rows go, see `release_rooms`) when the core
//! asks (`Write::Release`), at a v2 logout (LOGOUT), when its TTL runs
//! out (the heartbeats sweep `wschat:expiring`), and, if the sweep has not
//! come yet, when it is claimed afresh (RESERVE): so a new holder of a
//! name never inherits an earlier holder's rooms. The other nodes' cores
//! hear it as `["W", NODE, [["release", NAME]]]` when the name was tied to
//! any room of the home, or was held before (it may be tied to rooms on
//! other shards, which the home cannot see); NODE's own core with the
//! answer to its RESERVE or LOGOUT (before it), and everyone's after a
//! sweep (origin ""). The node then runs ROOM_RELEASE on every other shard
//! (whose event no core there is handed).
//!
//! Decisions stay in the core; the scripts settle only what one node
//! cannot know: a room created meanwhile by another node (another epoch),
//! and a join past `--max-room-members`. They answer [`REFUSED`] then, and
//! nothing of the run was done. Each checks `lost()` like the others.

/// The error code of a room script that refused (the race lost): nothing
/// of the run was done.
pub(crate) const REFUSED: &str = "WSCHAT_REFUSED";

/// Every room key.
pub(crate) const ROOMS: &str = "wschat:rooms";
/// The lobby's room key (`rooms::LOBBY` in the core).
pub(crate) const LOBBY: &str = "#lobby";

/// A key of `room`: `part` one of meta, log, members, bans, invites,
/// reads, left.
pub(crate) fn room_key(room: &str, part: &str) -> String {
    format!("wschat:{{r:{room}}}:{part}")
}

/// The set of the rooms `name` is tied to.
pub(crate) fn name_rooms_key(name: &str) -> String {
    format!("wschat:{{u:{name}}}:rooms")
}

/// The parts of a room, in the order [`ROOM_WRITES`] takes their keys.
pub(crate) const ROOM_PARTS: [&str; 7] =
    ["meta", "log", "members", "bans", "invites", "reads", "left"];

/// Functions of the room scripts (after the common prelude).
pub(crate) const ROOM_PRELUDE: &str = r#"
local function room_base(prefix, room) return prefix .. '{r:' .. room .. '}:' end
local function name_rooms(prefix, name) return prefix .. '{u:' .. name .. '}:rooms' end
-- The two parties of a direct conversation's key `@a\nb`.
local function parties(room)
  return string.match(room, '^@(.-)\n(.*)$')
end
-- A room and every key of it are gone; the names tied to it are not any more.
local function drop_room(prefix, directory, room)
  local base = room_base(prefix, room)
  local names = {}
  for _, n in ipairs(redis.call('HKEYS', base .. 'members')) do names[n] = true end
  for _, n in ipairs(redis.call('SMEMBERS', base .. 'invites')) do names[n] = true end
  for _, n in ipairs(redis.call('HKEYS', base .. 'reads')) do names[n] = true end
  local owner = redis.call('HGET', base .. 'meta', 'owner')
  if owner then names[owner] = true end
  local a, b = parties(room)
  if a then names[a] = true; names[b] = true end
  for n in pairs(names) do redis.call('SREM', name_rooms(prefix, n), room) end
  redis.call('DEL', base .. 'meta', base .. 'log', base .. 'members', base .. 'bans',
    base .. 'invites', base .. 'reads')
  redis.call('SREM', directory, room)
end
local function refused(why)
  return redis.error_reply('WSCHAT_REFUSED ' .. why)
end
-- KEY is released: its memberships (its lobby mute and "left" mark too),
-- invites and read markers go, a room it owned has no owner, every direct
-- conversation it is a party of is dropped; its bans stay. True if it was
-- tied to any room.
local function release_rooms(prefix, key)
  local set = name_rooms(prefix, key)
  local rooms = redis.call('SMEMBERS', set)
  for _, room in ipairs(rooms) do
    local a, b = parties(room)
    if a == key or b == key then
      drop_room(prefix, prefix .. 'rooms', room)
    else
      local base = room_base(prefix, room)
      redis.call('HDEL', base .. 'members', key)
      redis.call('SREM', base .. 'invites', key)
      redis.call('HDEL', base .. 'reads', key)
      redis.call('SREM', base .. 'left', key)
      if redis.call('HGET', base .. 'meta', 'owner') == key then
        redis.call('HDEL', base .. 'meta', 'owner')
      end
    end
  end
  redis.call('DEL', set)
  redis.call('ZREM', prefix .. 'expiring', key)
  return #rooms > 0
end
-- The other nodes' cores hear that KEY was released, when it was tied to
-- rooms, or always with FORCE (a name held before: it may be tied to rooms
-- on other shards, which the nodes release apart); ORIGIN's (the node
-- whose request it answers) hears it with the answer, true then. Origin
-- "": every node hears it (the sweep's).
local function tell_released(prefix, key, channel, origin, force)
  if release_rooms(prefix, key) or force then
    redis.call('PUBLISH', channel, cjson.encode({'W', origin, {{'release', key}}}))
    return true
  end
  return false
end
"#;

/// A run of the core's writes to one room (consecutive in its batch), all
/// or nothing: a creation and its owner's membership, a join and its
/// invite used, an act and its member's change.
/// KEYS: nodes, rooms, then the room's meta, log, members, bans, invites,
/// reads, left. ARGV: node, room key, --max-room-members, prefix, channel,
/// the event to publish (made by the node: `["W", node, [write, …]]`),
/// then each write: `room DISPLAY OWNER INVITE_ONLY TOPIC EPOCH`,
/// `member NAME ROLE MUTED`, `unmember NAME`, `ban NAME UNTIL`,
/// `unban NAME`, `invite NAME`, `uninvite NAME`, `read NAME SEQ`, `drop`
/// ("" for none). Returns 1, or [`REFUSED`] with why.
pub(crate) const ROOM_WRITES: &str = r#"
local gone = lost(KEYS[1], ARGV[1])
if gone then return gone end
local directory, meta, members, bans, invites, reads, left =
  KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local room, max, prefix = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local lobby = room == '#lobby'
local arity = {room = 5, member = 3, unmember = 1, ban = 2, unban = 1, invite = 1,
  uninvite = 1, read = 2, drop = 0}
local ops, i = {}, 7
while i <= #ARGV do
  local n = arity[ARGV[i]]
  if not n then return refused('an unknown write ' .. ARGV[i]) end
  ops[#ops + 1] = {unpack(ARGV, i, i + n)}
  i = i + 1 + n
end

-- First what may refuse, before anything changes.
local epoch = redis.call('HGET', meta, 'epoch')
local joining, counted = 0, {}
for _, op in ipairs(ops) do
  local kind = op[1]
  if kind == 'room' then
    if not lobby and epoch and epoch ~= op[6] then
      return refused(room .. ' was created meanwhile on another node')
    end
    epoch = op[6]
  elseif kind == 'drop' then
    epoch = nil
  elseif not epoch and not lobby then
    return refused('there is no room ' .. room .. ' (any more)')
  elseif kind == 'member' and not lobby and not counted[op[2]]
      and redis.call('HEXISTS', members, op[2]) == 0 then
    counted[op[2]] = true
    joining = joining + 1
  end
end
if joining > 0 and redis.call('HLEN', members) + joining > max then
  return refused(room .. ' is full: at most ' .. max .. ' members (--max-room-members)')
end

local function tie(name) redis.call('SADD', name_rooms(prefix, name), room) end
-- Ties NAME to the room while anything still does.
local function retie(name)
  local a, b = parties(room)
  if redis.call('HEXISTS', members, name) == 1 or redis.call('SISMEMBER', invites, name) == 1
      or redis.call('HEXISTS', reads, name) == 1 or redis.call('HGET', meta, 'owner') == name
      or a == name or b == name or redis.call('SISMEMBER', KEYS[9], name) == 1 then
    tie(name)
  else
    redis.call('SREM', name_rooms(prefix, name), room)
  end
end
local function lobby_row()
  if lobby and redis.call('EXISTS', meta) == 0 then
    redis.call('HSET', meta, 'display', room, 'invite_only', '0', 'epoch', '')
    redis.call('SADD', directory, room)
  end
end
local function set_or_clear(field, value)
  if value == '' then redis.call('HDEL', meta, field)
  else redis.call('HSET', meta, field, value) end
end

for _, op in ipairs(ops) do
  local kind, name = op[1], op[2]
  if kind == 'room' then
    lobby_row()
    set_or_clear('topic', op[5])
    if not lobby then
      local before = redis.call('HGET', meta, 'owner')
      redis.call('HSET', meta, 'display', op[2], 'invite_only', op[4], 'epoch', op[6])
      redis.call('HSETNX', meta, 'seq', '0')
      set_or_clear('owner', op[3])
      if before and before ~= op[3] then retie(before) end
      if op[3] ~= '' then tie(op[3]) end
      local a, b = parties(room)
      if a then tie(a); tie(b) end
      redis.call('SADD', directory, room)
    end
  elseif kind == 'member' then
    local role, muted = op[3], op[4]
    if lobby and muted == '' then
      redis.call('SREM', KEYS[9], name)
      retie(name)
    elseif lobby and muted == '0' then
      redis.call('HDEL', members, name)
      retie(name)
    else
      lobby_row()
      if muted ~= '' then role = role .. ' ' .. muted end
      redis.call('HSET', members, name, role)
      tie(name)
    end
  elseif kind == 'unmember' then
    if lobby then
      redis.call('SADD', KEYS[9], name)
      tie(name)
    else
      redis.call('HDEL', members, name)
      retie(name)
    end
  elseif kind == 'ban' then
    lobby_row()
    redis.call('HSET', bans, name, op[3])
  elseif kind == 'unban' then
    redis.call('HDEL', bans, name)
  elseif kind == 'invite' then
    redis.call('SADD', invites, name)
    tie(name)
  elseif kind == 'uninvite' then
    redis.call('SREM', invites, name)
    retie(name)
  elseif kind == 'read' then
    redis.call('HSET', reads, name, op[3])
    tie(name)
  elseif kind == 'drop' then
    drop_room(prefix, directory, room)
  end
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1
"#;

/// A name was released: its memberships (its lobby mute and "left" mark
/// too), invites and read markers go, a room it owned has no owner, every
/// direct conversation it is a party of is dropped; its bans stay.
/// KEYS: nodes, rooms, the name's rooms set. ARGV: node, name key, prefix,
/// channel, the event to publish. Returns 1.
pub(crate) const ROOM_RELEASE: &str = r#"
local gone = lost(KEYS[1], ARGV[1])
if gone then return gone end
release_rooms(ARGV[3], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#;

/// A run of room entries (consecutive room appends of one batch, any
/// rooms), grouped by room by the node: each room's entries its next
/// `seq`s (one HINCRBY a room, however many entries, which also tells a
/// room that exists: see below), into the room's log (trimmed
/// approximately, once a room a call), published together as one event:
/// `["R", node, [[ROOM, FIRST, [entry, …]], …]]` (a room's entries of one
/// run are numbered without a gap: the script runs alone). The node
/// encodes each entry (`[id, timestamp, username, text, notice]`) and each
/// room key as JSON; no JSON is made or read here.
/// KEYS: nodes, then each room's meta and log. ARGV: node, node as JSON,
/// --room-history, channel, then for each room: its key as JSON, the
/// number of its entries, and the entries. Returns each room's first
/// seq (its other entries follow it), or [`REFUSED`] in its place for a
/// room that does not exist (any more).
pub(crate) const ROOM_APPEND: &str = r#"
local gone = lost(KEYS[1], ARGV[1])
if gone then return gone end
local node, size = ARGV[1], ARGV[3]
local out, parts, i = {}, {}, 5
for r = 1, (#KEYS - 1) / 2 do
  local room, count = ARGV[i], ARGV[i + 1]
  local n = tonumber(count)
  local meta, log = KEYS[2 * r], KEYS[2 * r + 1]
  local first = redis.call('HINCRBY', meta, 'seq', count) - n + 1
  -- A room's meta has its epoch (and seq, from 0) from its creation to its
  -- drop; a first seq of 1 is a new room's, or no room's: then HINCRBY
  -- made a meta of its own, undone.
  if first == 1 and redis.call('HEXISTS', meta, 'epoch') == 0 then
    redis.call('HDEL', meta, 'seq')
    out[r] = refused('there is no room ' .. room .. ' (any more)')
  else
    for k = 0, n - 1 do
      local id = string.format('%d-0', first + k)
      if k < n - 1 then
        redis.call('XADD', log, id, 'n', node, 'd', ARGV[i + 2 + k])
      else -- trimmed once a call, at the room's last entry
        redis.call('XADD', log, 'MAXLEN', '~', size, id, 'n', node, 'd', ARGV[i + 2 + k])
      end
    end
    out[r] = first
    parts[#parts + 1] = '[' .. room .. ',' .. string.format('%d', first) .. ',['
      .. table.concat(ARGV, ',', i + 2, i + 1 + n) .. ']]'
  end
  i = i + 2 + n
end
if #parts > 0 then
  redis.call('PUBLISH', ARGV[4], '["R",' .. ARGV[2] .. ',[' .. table.concat(parts, ',') .. ']]')
end
return out
"#;

/// After a reconnect: every room's latest `seq`, so that what pub/sub lost
/// meanwhile is fetched from each log. KEYS: rooms, nodes. ARGV: node,
/// prefix. Returns `{room, seq, …}`.
pub(crate) const ROOM_SEQS: &str = r#"
local gone = lost(KEYS[2], ARGV[1])
if gone then return gone end
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local seq = redis.call('HGET', room_base(ARGV[2], room) .. 'meta', 'seq')
  if seq then
    out[#out + 1] = room
    out[#out + 1] = seq
  end
end
return out
"#;
