//! chat-cli: chat from a terminal, or from a script.
//!
//! This file only reads the arguments and the saved secret and picks the
//! mode; the client's logic is `wschat::client`, the wiring `wschat::cli`.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use clap::{CommandFactory, Parser, error::ErrorKind};
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use wschat::cli::state::{self, SecretsFile};
use wschat::cli::terminal::Prompt;
use wschat::cli::{self, Session};
use wschat::client::{Client, ClientConfig, Exit, Mode, OnNameRefused, Output, command};
use wschat::username::Username;

/// Chat in a wschat chat room from a terminal, or from a script.
#[derive(Debug, Parser)]
#[command(name = "chat-cli", version, after_long_help = more_help())]
struct Args {
    /// The chat server's WebSocket URL: ws://HOST:PORT, or wss://HOST[:PORT]
    /// for TLS (port 443 by default).
    #[arg(env = "CHAT_URL", default_value = "ws://127.0.0.1:8080", value_parser = parse_url)]
    url: String,

    /// Your name in the chat. Asked for when missing and stdin is a
    /// terminal, once chat-cli has reached the server.
    // Names and secrets may start with "-" (secrets are drawn from
    // A-Za-z0-9_-), so a value that looks like a flag is still a value.
    #[arg(short, long, env = "CHAT_NAME", allow_hyphen_values = true)]
    name: Option<String>,

    /// Read the secret that reclaims your name from FILE (its first line)
    /// instead of using the saved one; or set it in the environment
    /// variable CHAT_SECRET. Never on the command line, where every local
    /// user can read it (ps); --secret is refused.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,

    /// Refused: a secret on the command line is visible to every local user.
    #[arg(long, hide = true, allow_hyphen_values = true, value_name = "SECRET")]
    secret: Option<String>,

    /// Print every message from the server as one raw JSON line. The
    /// secret in the loginMessage is shown as "<redacted>".
    #[arg(long)]
    json: bool,

    /// Ring the terminal bell when a message names you (the default in a
    /// terminal). chat-cli cannot tell whether its terminal is in front,
    /// so it rings on every such message; most terminals and tmux only
    /// flag a bell from a window in the background.
    #[arg(long, overrides_with = "no_bell")]
    bell: bool,

    /// Never ring the bell; mentions are still highlighted.
    #[arg(long, overrides_with = "bell")]
    no_bell: bool,

    /// Join ROOM (e.g. '#dev', created if new) and talk there from the
    /// start: interactively it is the current room; in a script every line
    /// read is sent there, and every line received carries its room
    /// ("[#dev] …", "[bob → you] …"). Needs a server that speaks protocol v3.
    #[arg(long, value_name = "#ROOM", conflicts_with = "to", value_parser = parse_room)]
    room: Option<String>,

    /// Send every line as a direct message to NAME (in a script; in a
    /// terminal, NAME's direct messages are the current room). Received
    /// lines carry their room, as with --room. Needs protocol v3.
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    to: Option<String>,

    /// With --json, print the loginMessage's secret as the server sent it.
    #[arg(long, requires = "json")]
    show_secret: bool,

    /// For wss://, also trust the certificates in this PEM file: a private
    /// CA's, or a self-signed server's own certificate. The web's public
    /// certificate authorities (bundled with chat-cli) are always trusted.
    #[arg(long, env = "CHAT_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

fn more_help() -> String {
    let commands = command::help()
        .lines()
        .skip(1) // "commands:"
        .map(|line| format!("  {line}\n"))
        .collect::<String>();
    format!(
        "\
Interactive mode (stdin is a terminal):
  Type a line and press Enter to send it. Messages from others appear above
  the line you are typing, as \"HH:MM alice: hello\"; yours are marked (you).
  Arrivals and departures are shown too: \"* bob joined from 10.0.0.7\",
  \"* bob left\", \"* bob was disconnected (no answer)\", \"* bob logged out\".
  Messages said before you joined, or while you were away, are set apart
  from live ones (\"── 12 earlier messages ──\" … \"── now ──\"). A message that
  names you is highlighted and rings the terminal bell (--no-bell: quiet).
  A message of several lines shows its later lines indented under the
  first; a paste of several lines is sent as one message, newlines kept.
  When you press Enter the line you typed goes, and your message shows
  dimmed just above the prompt, marked (sending…), or (waiting for the
  connection) while offline, until the server confirms it: then it takes
  its place in the chat, once.
  Tab completes commands and the names of who is online (\"alice: \" at the
  start of a line, to address her; \"alice \" elsewhere; Tab again for the
  next match). On a protocol v1 server, which cannot list who is online, it
  completes the names seen since chat-cli started.
  The prompt appears once you are logged in. Commands (any case):
{commands}
  /quit first waits (10 s at most) for the server to confirm a message you
  just sent, then leaves and keeps your name reserved: the server releases
  it some minutes (10 by default) after your last connection closed, and
  until then only your secret gets it back. /logout frees it at once (the
  secret stops working), waits for the server to confirm, then leaves.

Scripting mode (stdin is not a terminal):
  Every line read is sent as a message, as it is; every message received is
  printed on stdout, one per line, in the same format (status and errors go
  to stderr). At the end of its input chat-cli waits up to 10 s for the
  server to confirm its messages, then leaves. For example:
    printf 'hi\\nthere\\n' | chat-cli --name bot
  Messages said while a script was disconnected are printed once it is
  back; the earlier ones a server shows a newcomer are not.
  With --json, each server message is printed as its raw JSON instead.

Rooms and direct messages (protocol v3):
  On a server that speaks protocol v3 you are in the lobby (#lobby) and may
  join rooms as IRC users do: /join #dev creates #dev if it is new and makes
  it the current room, shown in the prompt (\"#dev> \"): what you type goes
  there. A line of any other room or direct message is shown with its room
  in front, \"[#ops] 14:02 bob: …\" or \"[bob → you] 14:02 bob: lunch?\", so it is
  never taken for the current room's. /msg bob TEXT sends a direct message;
  /query bob makes bob's direct messages the current room. /rooms lists the
  public rooms and yours (members, topics, unread messages), /unread where
  unread messages wait; what you see in the current room is marked read on
  the server, so your other devices agree. A direct message rings the bell
  as a mention does (--no-bell: quiet). Tab completes #rooms. Rooms belong
  to your name: after a reconnect or a restart each room's missed messages
  are shown once, under one divider per room, and rooms joined or left on
  another device appear and disappear with a line saying so. Operators of a
  room have /topic, /invite, /kick, /ban, /unban, /mute, /unmute, /mode; its
  owner /op and /deop. In a script, --room '#dev' or --to NAME sends every
  line there; with --json each frame carries its room in its \"room\" field
  (none: the lobby).

Protocol versions:
  chat-cli offers protocol v3 (wschat.v3), then v2 (wschat.v2). With a
  server that selects it, a message shows the server's time of sending (in
  local time), leaves are shown, /who and /logout work, and a dropped
  connection loses nothing the server still holds. A server that selects no
  subprotocol speaks protocol v1, the original: chat-cli falls back to it,
  shows the time a message arrived, and has none of the above. On v1 and v2
  there are no rooms: the room commands, --room and --to say so.

Keeping your name:
  The server gives a secret with a new name. chat-cli saves it per server URL
  and name in $XDG_STATE_HOME/wschat/secrets.json (by default
  ~/.local/state/wschat/secrets.json, mode 0600) and sends it next time, so
  you get the same name back. One server can have several addresses
  (ws://localhost:8080 and ws://127.0.0.1:8080, or the nodes of a cluster):
  chat-cli also notes the message store each address showed at a login, and
  once two addresses have shown the same store, a secret saved at one is used
  at the other (and saved there too). It never sends a secret to an address
  not known to be the same server: if the name is taken there, it says where
  a secret for it is saved. A secret in CHAT_SECRET, or in the first line
  of the file given with --secret-file FILE, overrides the saved one (and
  is saved once it works: that is how a name moves to another machine).
  A secret is never taken on the command line, where every local user can
  read it (ps). The line history is kept next to it, in history. The
  directory is kept private (mode 0700): chat-cli tightens a looser one and
  says so. With --json the secret the server sends is shown as
  \"<redacted>\" unless --show-secret is given.

Dropped connections:
  chat-cli says so, reconnects by itself (after 0.5 s, doubling up to 30 s,
  with jitter), logs in again with the secret and says when it is back. Lines
  typed meanwhile are sent then. On v2 it first prints every message said
  while it was away (and says so if the server no longer holds some of them),
  and settles a line that was on its way when the connection dropped: shown
  once if the server got it, sent again if it did not, reported as possibly
  not delivered if nobody can tell any more. On v1 such a line is reported as
  possibly not delivered. When the server's message store is new (wiped, or
  the server keeps nothing across a restart), chat-cli says so once and shows
  every message said since.

Secure connections (wss://):
  chat-cli checks the server's certificate against the web's public
  certificate authorities (bundled with it; the system's store is not read).
  For a self-signed certificate or a private CA, pass that certificate with
  --ca-file FILE (PEM). An untrusted certificate ends chat-cli with exit 1.

Interactive mode uses colour when stdout is a terminal, unless NO_COLOR is set.

Without --name, chat-cli first connects, then asks for your name: if no
chat-server answers at the address, it says so and exits with 1.

Exit status: 0 success (a confirmed /logout included); 1 could not connect,
log in, deliver every message (a /quit or Ctrl-D with messages not sent
included) or have /logout confirmed, or was logged out from another
connection (the reason on stderr); 2 usage error, or the server refused the
--name given (taken, or not valid there); 130 cancelled with Ctrl-C at the
name prompt. A name typed at the prompt that the server refuses is asked
again."
    )
}

/// A room name: `#` and a name (the `#` may be left out, as a shell would
/// take it for a comment unquoted).
fn parse_room(room: &str) -> Result<String, String> {
    let name = room.strip_prefix('#').unwrap_or(room);
    Username::parse(name, usize::MAX)
        .map(|_| format!("#{name}"))
        .map_err(|e| format!("not a room name: {e}"))
}

/// A name to send direct messages to (a leading `@` may be given).
fn parse_name(name: &str) -> Result<String, String> {
    let name = name.strip_prefix('@').unwrap_or(name);
    Username::parse(name, usize::MAX)
        .map(|_| name.to_owned())
        .map_err(|e| format!("not a name: {e}"))
}

/// A `ws://` or `wss://` URL with a port in range; the scheme is written
/// in lower case (schemes are case-insensitive, the WebSocket library's
/// check is not).
fn parse_url(url: &str) -> Result<String, String> {
    let must = "the URL must start with ws:// or wss://";
    let Some((scheme, rest)) = url.split_once("://") else {
        // `localhost:8080`: the scheme left out.
        return Err(format!("{must}: did you mean ws://{url}?"));
    };
    let scheme = scheme.to_ascii_lowercase();
    // The page's address given for the chat's: the same server, its
    // WebSocket scheme.
    let meant = match scheme.as_str() {
        "ws" | "wss" => None,
        "http" => Some("ws"),
        "https" => Some("wss"),
        _ => return Err(must.into()),
    };
    if let Some(meant) = meant {
        return Err(format!("{must}: did you mean {meant}://{rest}?"));
    }
    let url = format!("{scheme}://{rest}");
    let request = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    // The URI type forgets a port it cannot read, which would mean the
    // default port: read it from the authority text.
    let authority = request.uri().authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if let Some((_, port)) = host_port
        .rsplit_once(':')
        .filter(|_| !host_port.ends_with(']'))
        && !port.is_empty()
        && !matches!(port.parse::<u16>(), Ok(1..))
    {
        return Err(format!(
            "the port {port} is out of range: a port is 1 to 65535"
        ));
    }
    Ok(url)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Failure(reason)) => {
            eprintln!("chat-cli: {reason}");
            ExitCode::from(1)
        }
        // Like a name refused before connecting: the argument must change.
        Ok(Exit::NameRefused(reason)) => {
            eprintln!("chat-cli: {reason}");
            ExitCode::from(2)
        }
        // As a shell reports a command ended by Ctrl-C (128 + SIGINT).
        Ok(Exit::Cancelled) => ExitCode::from(130),
        Err(e) => {
            eprintln!("chat-cli: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    if args.secret.is_some() {
        usage_error(
            ErrorKind::ArgumentConflict,
            "--secret is not accepted: a secret on the command line is visible to every \
             local user (ps); set it in CHAT_SECRET or pass --secret-file FILE",
        );
    }
    let given_secret = match &args.secret_file {
        Some(path) => Some(state::read_secret_file(path)?),
        None => std::env::var("CHAT_SECRET").ok().filter(|s| !s.is_empty()),
    };
    // Read even for ws://, so that a wrong path shows at once.
    cli::tls::trust(args.ca_file.as_deref())?;
    if let Some(dir) = state::state_dir() {
        match state::keep_private(&dir) {
            Ok(None) => {}
            Ok(Some(note)) => eprintln!("chat-cli: {note}"),
            Err(e) => eprintln!("chat-cli: {e}"),
        }
    }
    let interactive = io::stdin().is_terminal();
    let mode = if interactive {
        Mode::Interactive
    } else {
        Mode::Script
    };
    let prompt = if interactive {
        Some(Prompt::new(state::history_path()).context("cannot set up the line editor")?)
    } else {
        None
    };

    let colour = interactive
        && io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Without a name, chat-cli connects first and asks for one once the
    // server is there (the driver asks, at the core's request).
    let name = match args.name {
        Some(name) => {
            if let Err(e) = Username::parse(&name, usize::MAX) {
                usage_error(ErrorKind::ValueValidation, format!("invalid --name: {e}"));
            }
            name
        }
        None if interactive => String::new(),
        None => usage_error(
            ErrorKind::MissingRequiredArgument,
            "--name (or CHAT_NAME) is required when stdin is not a terminal",
        ),
    };

    let secrets = SecretsFile::in_state_dir();
    let saved = secrets.as_ref().and_then(|file| match file.load() {
        Ok(store) => Some(store.lookup(&args.url, &name)),
        Err(e) => {
            eprintln!("chat-cli: {e}; going on without saved secrets");
            None
        }
    });

    let mut config = ClientConfig::new(&args.url, &name, mode);
    if name.is_empty() {
        config.on_name_refused = OnNameRefused::AskAnother;
    }
    config.given_secret = given_secret;
    if !name.is_empty() {
        config.set_saved(saved.unwrap_or_default());
    }
    config.room = match (args.room, args.to) {
        (Some(room), _) => Some(room),
        (None, Some(to)) => Some(format!("@{to}")),
        (None, None) => None,
    };
    config.output = if args.json {
        Output::Json {
            show_secret: args.show_secret,
        }
    } else {
        Output::Lines {
            bell: interactive && !args.no_bell,
        }
    };
    let rng = StdRng::try_from_rng(&mut SysRng).context("no randomness from the OS")?;
    let client = Client::new(config, rng, Instant::now());
    let session = Session {
        url: args.url,
        mode,
        colour,
        secrets,
        prompt,
    };
    Ok(cli::run(client, session))
}

/// Exits with status 2 and clap's usage hint.
fn usage_error(kind: ErrorKind, message: impl std::fmt::Display) -> ! {
    Args::command().error(kind, message).exit()
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn a_url_without_the_websocket_scheme_is_refused_with_the_one_meant() {
        let refused = |url: &str| parse_url(url).unwrap_err();
        let must = "the URL must start with ws:// or wss://";
        assert_eq!(
            refused("localhost:8080"),
            format!("{must}: did you mean ws://localhost:8080?")
        );
        assert_eq!(
            refused("http://127.0.0.1:8080"),
            format!("{must}: did you mean ws://127.0.0.1:8080?")
        );
        assert_eq!(
            refused("HTTPS://chat.example.com/"),
            format!("{must}: did you mean wss://chat.example.com/?")
        );
        assert_eq!(refused("ftp://h:1"), must);
        assert_eq!(parse_url("WS://h:1").as_deref(), Ok("ws://h:1"));
    }
}
