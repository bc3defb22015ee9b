//! The link's commands as Redis commands: each script's keys and arguments
//! (see [`scripts`](super::scripts) for what each takes).

use std::sync::Arc;
use std::time::Duration;

use redis::Cmd;

use super::Settings;
use super::events;
use super::machine::Join;
use super::requests::Call;
use super::scripts::{self, CHANNEL, HISTORY, Lua, META, NODES, ONLINE, PREFIX, Scripts};

/// What every command of this node says the same way.
#[derive(Debug)]
pub(crate) struct Encoder {
    pub(crate) node: Arc<str>,
    pub(crate) settings: Settings,
    pub(crate) scripts: Arc<Scripts>,
}

impl Encoder {
    /// The EVALSHA of one request.
    pub(crate) fn call(&self, call: &Call) -> Cmd {
        let (scripts, node) = (&self.scripts, &*self.node);
        let presence = scripts::presence_key(node);
        match call {
            Call::Reserve {
                key,
                display,
                offered,
                fresh,
                location,
                timestamp,
                ..
            } => {
                let name = scripts::name_key(key);
                let keys = [&*name, ONLINE, &presence, NODES, META];
                let mut cmd = evalsha(&scripts.reserve, &keys);
                cmd.arg(&**key)
                    .arg(&**display)
                    .arg(offered)
                    .arg(fresh)
                    .arg(node)
                    .arg(&**location)
                    .arg(*timestamp)
                    .arg(CHANNEL);
                cmd
            }
            Call::Disconnect { key, reason, .. } => {
                let mut cmd = evalsha(&scripts.disconnect, &[ONLINE, &presence, NODES]);
                cmd.arg(&**key)
                    .arg(node)
                    .arg(events::reason_name(*reason))
                    .arg(millis(self.settings.login_ttl))
                    .arg(PREFIX)
                    .arg(CHANNEL);
                cmd
            }
            Call::Logout {
                key,
                display,
                secret,
                ..
            } => {
                let name = scripts::name_key(key);
                let mut cmd = evalsha(&scripts.logout, &[&name, ONLINE, NODES]);
                cmd.arg(&**key)
                    .arg(secret)
                    .arg(node)
                    .arg(&**display)
                    .arg(PREFIX)
                    .arg(CHANNEL);
                cmd
            }
            Call::Online { .. } => {
                let mut cmd = evalsha(&scripts.online, &[ONLINE, NODES]);
                cmd.arg(PREFIX).arg(node);
                cmd
            }
            Call::Append {
                id,
                timestamp,
                username,
                text,
                ..
            } => {
                let mut cmd = evalsha(&scripts.append, &[META, HISTORY, NODES]);
                cmd.arg(node)
                    .arg(&**id)
                    .arg(*timestamp)
                    .arg(&**username)
                    .arg(&**text)
                    .arg(self.settings.history_size)
                    .arg(CHANNEL);
                cmd
            }
        }
    }

    /// The JOIN script: this node's epoch, what it delivered and every name
    /// it holds; at the first join, the latest messages too.
    pub(crate) fn join(&self, join: &Join) -> Cmd {
        let presence = scripts::presence_key(&self.node);
        let mut cmd = evalsha(
            &self.scripts.join,
            &[META, HISTORY, ONLINE, NODES, presence.as_str()],
        );
        cmd.arg(&*self.node)
            .arg(&join.epoch)
            .arg(if join.rejoining { "1" } else { "0" })
            .arg(join.delivered)
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL)
            .arg(if join.rejoining {
                0
            } else {
                self.settings.history_size
            })
            .arg(millis(self.settings.node_timeout));
        for name in &join.names {
            cmd.arg(&*name.key)
                .arg(&*name.display)
                .arg(&name.secret)
                .arg(name.connections);
        }
        cmd
    }

    pub(crate) fn heartbeat(&self) -> Cmd {
        let mut cmd = evalsha(&self.scripts.heartbeat, &[NODES, ONLINE, META]);
        cmd.arg(&*self.node)
            .arg(millis(self.settings.node_timeout))
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL);
        cmd
    }

    pub(crate) fn fill(from: u64, to: u64) -> Cmd {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(HISTORY)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(to - from + 1);
        cmd
    }

    /// The LEAVE script, at shutdown.
    pub(crate) fn leave(&self) -> Cmd {
        let presence = scripts::presence_key(&self.node);
        let mut cmd = evalsha(&self.scripts.leave, &[NODES, ONLINE, presence.as_str()]);
        cmd.arg(&*self.node)
            .arg(millis(self.settings.login_ttl))
            .arg(PREFIX)
            .arg(CHANNEL);
        cmd
    }
}

fn evalsha(script: &Lua, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.hash).arg(keys.len()).arg(keys);
    cmd
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
