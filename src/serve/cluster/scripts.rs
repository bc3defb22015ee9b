//! The Lua scripts that make each multi-key step atomic across nodes
//! (WATCH/MULTI would be unsound on a multiplexed connection, where other
//! tasks' commands interleave). They are loaded once per connection and
//! run with EVALSHA; a NOSCRIPT (Redis restarted, or its scripts flushed)
//! loads them again.
//!
//! The key schema (README, "What lives in Redis"), with the prefix
//! `wschat:`:
//! - `meta` hash: `epoch` (set once), `seq` (the latest message's),
//!   `beat` and `calm` (the sweep's: see [`HEARTBEAT`]), `rebuilding`
//!   (ms: until then, after Redis lost the cluster's keys, no name is
//!   given afresh and no message numbered; see [`JOIN`]);
//! - `history` stream: the latest `--history-size` messages (a few more:
//!   trimmed by whole stream nodes), entry id `SEQ-0`, fields `n` node and
//!   `d` the message as JSON `[id, timestamp, username, text]` (entries of
//!   older nodes: `n`, `i` id, `t` timestamp, `u` username, `x` text);
//! - `name:KEY` hash: `display`, `secret` (SHA-256 hex), `expires` (ms;
//!   0 while a connection holds it); expires by itself (PEXPIREAT);
//! - `online` hash: KEY → connections holding it on every node;
//! - `presence:NODE` hash: KEY → connections holding it on that node;
//! - `nodes` sorted set: NODE → its latest heartbeat (ms);
//! - `expiring` sorted set: KEY → when its name expires (ms), for the
//!   heartbeats' sweep of expired names' rooms (see `room_scripts`);
//! - channel `wschat:events`: what each node tells the others.
//!
//! Times are Redis's own clock (`TIME`), so the nodes' clocks never
//! disagree about a TTL.
//!
//! A Redis that forgets (FLUSHALL, eviction under `maxmemory`, a failover
//! to an empty replica) must never hand out names its holders still hold.
//! Every script but LEAVE first checks that its node is registered in
//! `nodes`, which only JOIN adds it to; if not, it changes nothing and
//! answers [`LOST`], and the node registers again what it holds. So after
//! a loss every node, each at its next request or heartbeat, re-registers
//! its own names; the first JOIN to find no `epoch` opens a rebuilding
//! window of one node timeout, by which every living node has beaten
//! (and so re-registered) and after which a name nobody re-registered is
//! nobody's. Meanwhile RESERVE gives no name afresh and APPEND numbers no
//! message: both answer [`REBUILDING`].

/// The error code of a script whose node is not registered (Redis lost
/// the cluster's keys, or swept the node): nothing was done.
pub(crate) const LOST: &str = "WSCHAT_LOST";
/// The error code of a RESERVE of a free name, or an APPEND, while the
/// cluster's state is rebuilt after a loss: nothing was done.
pub(crate) const REBUILDING: &str = "WSCHAT_REBUILDING";

/// Every key and the channel start with this.
pub(crate) const PREFIX: &str = "wschat:";
pub(crate) const META: &str = "wschat:meta";
pub(crate) const HISTORY: &str = "wschat:history";
pub(crate) const ONLINE: &str = "wschat:online";
pub(crate) const NODES: &str = "wschat:nodes";
pub(crate) const CHANNEL: &str = "wschat:events";

pub(crate) fn name_key(key: &str) -> String {
    format!("{PREFIX}name:{key}")
}

pub(crate) fn presence_key(node: &str) -> String {
    format!("{PREFIX}presence:{node}")
}

/// Functions every script may use.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- NODE is not in NODES: Redis lost the cluster's keys, or swept NODE. The
-- script must change nothing and answer this; the node registers again.
local function lost(nodes, node)
  if redis.call('ZSCORE', nodes, node) then return nil end
  return redis.error_reply('WSCHAT_LOST this node is not registered (Redis lost its keys?)')
end

-- After a loss, until every node has registered again what it holds. The
-- clock is read only while a window is open (appends ask at every call).
local function rebuilding(meta)
  local until_ms = redis.call('HGET', meta, 'rebuilding')
  if not until_ms then return nil end
  if now_ms() >= tonumber(until_ms) then
    redis.call('HDEL', meta, 'rebuilding')
    return nil
  end
  return redis.error_reply('WSCHAT_REBUILDING the cluster is registering again what it holds')
end

-- No connection on any node holds KEY since AT (ms): its name waits out the
-- TTL from then, and every node but ORIGIN's hears that it left.
local function released(prefix, key, at, ttl, origin, reason, channel)
  local name = prefix .. 'name:' .. key
  local display = redis.call('HGET', name, 'display')
  if not display then return end
  local expires = at + ttl
  redis.call('HSET', name, 'expires', string.format('%d', expires))
  redis.call('PEXPIREAT', name, string.format('%d', expires))
  -- For the sweep of expired names' rooms (see HEARTBEAT).
  redis.call('ZADD', prefix .. 'expiring', string.format('%d', expires), key)
  redis.call('PUBLISH', channel, cjson.encode({'l', origin, display, reason}))
  return display
end

-- Takes COUNT connections of NODE's presence off KEY's total; true when
-- none is left on any node.
local function drop(online, key, count)
  if redis.call('HINCRBY', online, key, -count) > 0 then return false end
  redis.call('HDEL', online, key)
  return true
end
"#;

/// A login: reserve a free name, reclaim a held one with its secret, or
/// say it is taken.
/// KEYS: name, online, presence, nodes, meta. ARGV: key, display, offered
/// (hex, or ""), fresh (hex), node, location, timestamp, channel.
/// Returns `{claim, display, released}`, claim one of fresh, reclaimed,
/// taken; `released` "1" when an earlier holder's rooms were released
/// (this node's core is told before the answer: see `room_scripts`).
pub(crate) const RESERVE: &str = r#"
local name, online, presence = KEYS[1], KEYS[2], KEYS[3]
local key = ARGV[1]
local gone = lost(KEYS[4], ARGV[5])
if gone then return gone end
local found = redis.call('HMGET', name, 'display', 'secret', 'expires')
local claim, display, released_rooms = nil, nil, '0'
local held = found[1] and (tonumber(redis.call('HGET', online, key) or '0') > 0
  or tonumber(found[3] or '0') > now_ms())
if held then
  -- Hashes are compared, not secrets: timing tells nothing of a secret.
  if ARGV[3] == '' or ARGV[3] ~= found[2] then return {'taken', found[1]} end
  claim, display = 'reclaimed', found[1]
else
  local wait = rebuilding(KEYS[5])
  if wait then return wait end
  claim, display = 'fresh', ARGV[2]
  -- An earlier holder's rooms, if the sweep has not released them yet.
  local earlier = redis.call('ZSCORE', 'wschat:expiring', key)
  if tell_released('wschat:', key, ARGV[8], ARGV[5], earlier) then released_rooms = '1' end
  redis.call('DEL', name)
  redis.call('HSET', name, 'display', display, 'secret', ARGV[4])
end
redis.call('HSET', name, 'expires', '0')
redis.call('PERSIST', name)
redis.call('HINCRBY', online, key, 1)
redis.call('HINCRBY', presence, key, 1)
redis.call('PUBLISH', ARGV[8], cjson.encode({'j', ARGV[5], display, ARGV[6], ARGV[7]}))
return {claim, display, released_rooms}
"#;

/// A connection holding a name went away.
/// KEYS: online, presence, nodes. ARGV: key, node, reason, ttl (ms),
/// prefix, channel. Returns 1 when no connection on any node holds it any
/// more.
pub(crate) const DISCONNECT: &str = r#"
local online, presence = KEYS[1], KEYS[2]
local key = ARGV[1]
local gone = lost(KEYS[3], ARGV[2])
if gone then return gone end
-- Not held here (any more): swept while this node was cut off, or
-- logged out; whoever released it told everyone.
if tonumber(redis.call('HGET', presence, key) or '0') <= 0 then return 0 end
if redis.call('HINCRBY', presence, key, -1) <= 0 then redis.call('HDEL', presence, key) end
if not drop(online, key, 1) then return 0 end
released(ARGV[5], key, now_ms(), tonumber(ARGV[4]), ARGV[2], ARGV[3], ARGV[6])
return 1
"#;

/// A v2 logout: the name is free everywhere and its secret worthless.
/// KEYS: name, online, nodes. ARGV: key, secret (hex: the holder's, so
/// that a stale logout never frees someone else's name: compare and
/// delete), node, display, prefix, channel. Returns 1 if it was freed, 2
/// if its rooms' rows went with it (see `room_scripts`).
/// The event names the secret freed, so that a node whose user claimed
/// the name afresh since (another secret) keeps that user logged in.
pub(crate) const LOGOUT: &str = r#"
local name, online, nodes = KEYS[1], KEYS[2], KEYS[3]
local key = ARGV[1]
local gone = lost(nodes, ARGV[3])
if gone then return gone end
if redis.call('HGET', name, 'secret') ~= ARGV[2] then return 0 end
redis.call('DEL', name)
redis.call('HDEL', online, key)
for _, node in ipairs(redis.call('ZRANGE', nodes, 0, -1)) do
  redis.call('HDEL', ARGV[5] .. 'presence:' .. node, key)
end
redis.call('PUBLISH', ARGV[6], cjson.encode({'o', ARGV[3], key, ARGV[4], ARGV[2]}))
if tell_released(ARGV[5], key, ARGV[6], ARGV[3], true) then return 2 end
return 1
"#;

/// Who is online on every node. KEYS: online, nodes. ARGV: prefix, node.
/// Returns `{display, connections, …}`.
pub(crate) const ONLINE_LIST: &str = r#"
local gone = lost(KEYS[2], ARGV[2])
if gone then return gone end
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local display = redis.call('HGET', ARGV[1] .. 'name:' .. all[i], 'display')
  if display then
    out[#out + 1] = display
    out[#out + 1] = all[i + 1]
  end
end
return out
"#;

/// A run of messages (consecutive appends of one batch of this node's
/// requests): each the next `seq`, into the history (trimmed
/// approximately, once a run: whole stream nodes, which is what makes
/// trimming cheap), and published together as one event: one round trip,
/// one script call and one publish for the run, whatever its length. Each
/// message comes encoded by the node (`[id, timestamp, username, text]` in JSON), and is
/// kept and published as it came: no JSON is made or read here.
/// KEYS: meta, history, nodes. ARGV: node, node as a JSON string, history
/// size, channel, then each message. The event is
/// `["M", node, FIRST, [message, …]]`. Returns the first message's seq;
/// the others follow it.
/// While rebuilding after a loss, `seq` is only as high as the nodes that
/// registered again delivered: a message numbered then could reuse a seq
/// another node's clients already have, so none is.
pub(crate) const APPEND: &str = r#"
local gone = lost(KEYS[3], ARGV[1]) or rebuilding(KEYS[1])
if gone then return gone end
local first = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') + 1
local seq, node, size, history = first - 1, ARGV[1], ARGV[3], KEYS[2]
for i = 5, #ARGV do
  seq = seq + 1
  -- The first XADD fails on a stream out of step with the counter, before
  -- anything changed; the later ones follow it. Trimmed once, at the last.
  local id = string.format('%d-0', seq)
  if i < #ARGV then
    redis.call('XADD', history, id, 'n', node, 'd', ARGV[i])
  else
    redis.call('XADD', history, 'MAXLEN', '~', size, id, 'n', node, 'd', ARGV[i])
  end
end
redis.call('HSET', KEYS[1], 'seq', string.format('%d', seq))
redis.call('PUBLISH', ARGV[4], '["M",' .. ARGV[2] .. ',' .. string.format('%d', first)
  .. ',[' .. table.concat(ARGV, ',', 5) .. ']]')
return first
"#;

/// A node's heartbeat, and the sweep of dead nodes: a node whose last
/// heartbeat is older than the node timeout releases every name it held
/// (at its last heartbeat), and everyone hears those users left. After a
/// pause in everyone's heartbeats (Redis stalled or unreachable, so every
/// node looks silent at once) nobody is swept for one node timeout, so
/// that the living have time to beat again. At most 8 dead nodes per beat.
/// KEYS: nodes, online, meta. ARGV: node, timeout (ms), ttl (ms), prefix,
/// channel. Returns `{1 if this node was not registered, nodes swept}`
/// (the first is never 1 now: an unregistered node is answered [`LOST`]
/// first).
pub(crate) const HEARTBEAT: &str = r#"
local nodes, online, meta = KEYS[1], KEYS[2], KEYS[3]
local gone = lost(nodes, ARGV[1])
if gone then return gone end
local now = now_ms()
local absent = redis.call('ZADD', nodes, string.format('%d', now), ARGV[1])
local timeout, ttl, prefix = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
-- Names whose TTL ran out take their rooms' rows with them (at most 16 a
-- beat); one held again since is not released.
local expiring = prefix .. 'expiring'
for _, key in ipairs(redis.call('ZRANGEBYSCORE', expiring, '-inf', now, 'LIMIT', 0, 16)) do
  local expires = redis.call('HGET', prefix .. 'name:' .. key, 'expires')
  if expires and (expires == '0' or tonumber(expires) > now) then
    redis.call('ZREM', expiring, key)
  else
    tell_released(prefix, key, ARGV[5], '', true)
    redis.call('ZREM', expiring, key)
  end
end
local last = tonumber(redis.call('HGET', meta, 'beat') or '0')
redis.call('HSET', meta, 'beat', string.format('%d', now))
if now - last > timeout / 2 then
  redis.call('HSET', meta, 'calm', string.format('%d', now + timeout))
end
if now < tonumber(redis.call('HGET', meta, 'calm') or '0') then return {absent, 0} end
local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', string.format('(%d', now - timeout),
  'WITHSCORES', 'LIMIT', 0, 8)
local swept = 0
for i = 1, #dead, 2 do
  local node, beat = dead[i], tonumber(dead[i + 1])
  local presence = prefix .. 'presence:' .. node
  local held = redis.call('HGETALL', presence)
  for j = 1, #held, 2 do
    if drop(online, held[j], tonumber(held[j + 1])) then
      released(prefix, held[j], beat, ttl, node, 'disconnected', ARGV[5])
    end
  end
  redis.call('DEL', presence)
  redis.call('ZREM', nodes, node)
  swept = swept + 1
end
return {absent, swept}
"#;

/// A node (re)joins: at its start, and after every reconnect.
/// - The numbering: the epoch is set if Redis has none (a new Redis, or
///   one that lost its data), `seq` never goes back (below the stream's
///   top, or below what this node already delivered).
/// - Its presence: made exactly what this node holds (names, secrets and
///   connection counts), so that nothing is lost or counted twice whatever
///   happened while it was cut off; a name someone else took meanwhile is
///   returned as a conflict.
/// - With `snapshot` > 0, the latest that many messages.
/// - Rejoining a Redis without an epoch: it lost the cluster's keys. The
///   rebuilding window opens (one node timeout: see the module's notes);
///   `seq` starts again from what this node delivered, and each node
///   rejoining raises it to what it delivered, so that numbering never
///   goes back for anyone's clients once messages are taken again.
///
/// KEYS: meta, history, online, nodes, presence. ARGV: node, epoch (this
/// node's, or a fresh one at start), rejoining (1/0), delivered, ttl (ms),
/// prefix, channel, snapshot, node timeout (ms), then KEY DISPLAY SECRET
/// COUNT for each name held. Returns `{epoch, seq, conflicts, gone,
/// entries, rebuilding}` (`gone`: the users whose last connection closed
/// while Redis was out of reach, whom this node's own clients have not
/// heard leave; `rebuilding`: ms left of the rebuilding window, or 0);
/// when rejoining a Redis that holds another epoch: `{epoch}` and nothing
/// is changed.
pub(crate) const JOIN: &str = r#"
local meta, history, online, nodes, presence = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local node, prefix, channel = ARGV[1], ARGV[6], ARGV[7]
local ttl = tonumber(ARGV[5])
local now = now_ms()
if redis.call('HSETNX', meta, 'epoch', ARGV[2]) == 1 and ARGV[3] == '1' then
  redis.call('HSET', meta, 'rebuilding', string.format('%d', now + tonumber(ARGV[9])))
end
local epoch = redis.call('HGET', meta, 'epoch')
if ARGV[3] == '1' and epoch ~= ARGV[2] then return {epoch} end
local seq = math.max(tonumber(redis.call('HGET', meta, 'seq') or '0'), tonumber(ARGV[4]))
local top = redis.call('XREVRANGE', history, '+', '-', 'COUNT', 1)[1]
if top then seq = math.max(seq, tonumber(string.match(top[1], '^(%d+)'))) end
redis.call('HSET', meta, 'seq', string.format('%d', seq))

local wanted, conflicts, gone = {}, {}, {}
for i = 10, #ARGV, 4 do
  local key, display, secret, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local name = prefix .. 'name:' .. key
  local found = redis.call('HGET', name, 'secret')
  if found and found ~= secret then
    conflicts[#conflicts + 1] = key
  else
    if not found then redis.call('HSET', name, 'display', display, 'secret', secret) end
    redis.call('HSET', name, 'expires', '0')
    redis.call('PERSIST', name)
    local here = tonumber(redis.call('HGET', presence, key) or '0')
    if redis.call('HINCRBY', online, key, count - here) < count then
      redis.call('HSET', online, key, count) -- lost meanwhile: at least ours
    end
    redis.call('HSET', presence, key, count)
    wanted[key] = true
  end
end
local held = redis.call('HGETALL', presence)
for j = 1, #held, 2 do
  local key = held[j]
  if not wanted[key] then
    redis.call('HDEL', presence, key)
    if drop(online, key, tonumber(held[j + 1])) then
      gone[#gone + 1] = released(prefix, key, now, ttl, node, 'disconnected', channel)
    end
  end
end
redis.call('ZADD', nodes, string.format('%d', now), node)
-- The heartbeats' clock starts with the first node (see HEARTBEAT); a node
-- coming back after an outage must not restart it.
redis.call('HSETNX', meta, 'beat', string.format('%d', now))

local entries = {}
local snapshot = tonumber(ARGV[8])
if snapshot > 0 then
  entries = redis.call('XREVRANGE', history, string.format('%d', seq), '-', 'COUNT', snapshot)
end
local rebuilding = math.max(0, tonumber(redis.call('HGET', meta, 'rebuilding') or '0') - now)
return {epoch, seq, conflicts, gone, entries, rebuilding}
"#;

/// A node stops (SIGTERM): its remaining presence is released at once, as
/// the sweep would have done later. KEYS: nodes, online, presence.
/// ARGV: node, ttl (ms), prefix, channel.
pub(crate) const LEAVE: &str = r#"
local nodes, online, presence = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local held = redis.call('HGETALL', presence)
for j = 1, #held, 2 do
  if drop(online, held[j], tonumber(held[j + 1])) then
    released(ARGV[3], held[j], now, tonumber(ARGV[2]), ARGV[1], 'disconnected', ARGV[4])
  end
end
redis.call('DEL', presence)
redis.call('ZREM', nodes, ARGV[1])
return 1
"#;

use super::room_scripts;

/// A script, run by its SHA-1.
#[derive(Debug)]
pub(crate) struct Lua {
    pub(crate) code: String,
    pub(crate) hash: String,
}

impl Lua {
    fn new(body: &str) -> Lua {
        let code = format!("{PRELUDE}{}{body}", room_scripts::ROOM_PRELUDE);
        let hash = redis::Script::new(&code).get_hash().to_owned();
        Lua { code, hash }
    }
}

/// The scripts, ready to run by their SHA-1.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) reserve: Lua,
    pub(crate) disconnect: Lua,
    pub(crate) logout: Lua,
    pub(crate) online: Lua,
    pub(crate) append: Lua,
    pub(crate) heartbeat: Lua,
    pub(crate) join: Lua,
    pub(crate) leave: Lua,
    pub(crate) room_writes: Lua,
    pub(crate) room_release: Lua,
    pub(crate) room_append: Lua,
    pub(crate) room_seqs: Lua,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            reserve: Lua::new(RESERVE),
            disconnect: Lua::new(DISCONNECT),
            logout: Lua::new(LOGOUT),
            online: Lua::new(ONLINE_LIST),
            append: Lua::new(APPEND),
            heartbeat: Lua::new(HEARTBEAT),
            join: Lua::new(JOIN),
            leave: Lua::new(LEAVE),
            room_writes: Lua::new(room_scripts::ROOM_WRITES),
            room_release: Lua::new(room_scripts::ROOM_RELEASE),
            room_append: Lua::new(room_scripts::ROOM_APPEND),
            room_seqs: Lua::new(room_scripts::ROOM_SEQS),
        }
    }

    pub(crate) fn all(&self) -> [&Lua; 12] {
        [
            &self.reserve,
            &self.disconnect,
            &self.logout,
            &self.online,
            &self.append,
            &self.heartbeat,
            &self.join,
            &self.leave,
            &self.room_writes,
            &self.room_release,
            &self.room_append,
            &self.room_seqs,
        ]
    }
}
