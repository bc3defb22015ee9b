//! The `chat-cli` driver: wires a [`Client`] to a WebSocket, a terminal (or
//! a script's stdin and stdout) and the clock. It decides nothing: every
//! decision is the client core's.
//!
//! One async task (on smol) runs the loop: perform the core's actions,
//! show its events, then wait for whichever comes first — a network event,
//! a user line, or the core's deadline — and hand it in. The connection is
//! a task of its own ([`net`]); reading lines and printing run on threads
//! ([`terminal`]).

pub mod net;
pub mod state;
pub mod terminal;
pub mod tls;

use std::time::Instant;

use rand::Rng;
use smol::Timer;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;

use crate::client::{Action, Client, ClockTime, Event, Exit, Line, Mode, Saved};
use net::{Connection, NetEvent};
use state::SecretsFile;
use terminal::{Answer, Gate, Output, Printer, Prompt, TerminalGuard, UserInput};

/// How to run: everything the driver needs besides the core.
pub struct Session {
    /// The server's URL, also the key of saved secrets.
    pub url: String,
    pub mode: Mode,
    /// Style the lines (interactive, stdout is a terminal, `NO_COLOR` unset).
    pub colour: bool,
    /// Where issued secrets are saved; `None` when there is no state dir.
    pub secrets: Option<SecretsFile>,
    /// The line editor, in interactive mode.
    pub prompt: Option<Prompt>,
}

/// Runs the client until it finishes; returns how.
pub fn run<R: Rng>(client: Client<R>, mut session: Session) -> Exit {
    let guard = TerminalGuard::save();
    let external = session.prompt.as_mut().and_then(Prompt::external_printer);
    let gate = session
        .prompt
        .as_ref()
        .map_or_else(Gate::open_always, Prompt::gate);
    let keep_rows = session.prompt.as_ref().is_some_and(Prompt::keeps_rows);
    let printer = Printer::start(external, gate, session.colour, keep_rows);
    let (typed, input) = match session.mode {
        Mode::Interactive => {
            let (typed, input) = smol::channel::unbounded();
            (Some(typed), input)
        }
        Mode::Script => (None, terminal::read_stdin()),
    };
    let mut driver = Driver {
        client,
        session,
        printer: printer.lines.clone(),
        typed,
        input,
        input_open: true,
        current: None,
        closing: Vec::new(),
        next_id: 0,
        roster_seen: None,
    };
    // Bounded: if the user's side stalls, reading stops and the server sees
    // a slow reader, instead of this process buffering without limit.
    let (net_events, net) = smol::channel::bounded(64);
    let exit = smol::block_on(driver.run(net_events, net));
    let raw_terminal = driver
        .session
        .prompt
        .as_ref()
        .is_some_and(Prompt::is_running);
    drop(driver);
    printer.finish();
    if raw_terminal {
        guard.restore();
    }
    exit
}

/// The local time of day, for the lines being printed now.
pub fn local_time() -> ClockTime {
    clock_time(&jiff::ZonedDateTime::now())
}

/// The local time of day of a server `timestamp` (milliseconds since the
/// Unix epoch); `None` if it is out of range.
pub fn local_time_of(millis: u64) -> Option<ClockTime> {
    let millis = i64::try_from(millis).ok()?;
    let at = jiff::Timestamp::from_millisecond(millis).ok()?;
    Some(clock_time(
        &at.to_zoned_datetime(jiff::tz::TimeZone::system()),
    ))
}

fn clock_time(at: &jiff::ZonedDateTime) -> ClockTime {
    ClockTime {
        hour: u8::try_from(at.hour()).unwrap_or(0),
        minute: u8::try_from(at.minute()).unwrap_or(0),
    }
}

struct Driver<R> {
    client: Client<R>,
    session: Session,
    printer: Sender<Output>,
    /// Where the editor thread sends lines (interactive), once started.
    typed: Option<Sender<UserInput>>,
    input: Receiver<UserInput>,
    input_open: bool,
    /// The connection the core knows about.
    current: Option<Connection>,
    /// Connections the core closed, finishing their close handshake.
    closing: Vec<smol::Task<()>>,
    next_id: u64,
    /// The roster generation and name last handed to the completer.
    roster_seen: Option<(u64, String)>,
}

enum Wake {
    Net(u64, NetEvent),
    Input(UserInput),
    Timeout,
}

impl<R: Rng> Driver<R> {
    async fn run(
        &mut self,
        net_events: Sender<(u64, NetEvent)>,
        net: Receiver<(u64, NetEvent)>,
    ) -> Exit {
        loop {
            // Handling an event can feed the core (a new name), which then
            // has more to do: drain until it is quiet.
            loop {
                let mut quiet = true;
                while let Some(action) = self.client.poll_action() {
                    self.perform(action, &net_events);
                    quiet = false;
                }
                while let Some(event) = self.client.poll_event() {
                    quiet = false;
                    if let Some(exit) = self.handle_event(event).await {
                        self.finish().await;
                        return exit;
                    }
                }
                if quiet {
                    break;
                }
            }
            self.start_prompt_once_online();
            self.share_roster();

            let deadline = self.client.poll_timeout();
            let wants_input = self.input_open
                && match self.session.mode {
                    Mode::Interactive => true,
                    Mode::Script => self.client.accepts_input(),
                };
            let network = async {
                match net.recv().await {
                    Ok((id, event)) => Wake::Net(id, event),
                    Err(_) => std::future::pending().await, // we hold a sender
                }
            };
            let input = async {
                if !wants_input {
                    return std::future::pending().await;
                }
                match self.input.recv().await {
                    Ok(input) => Wake::Input(input),
                    Err(_) => Wake::Input(UserInput::End),
                }
            };
            let timer = async {
                match deadline {
                    Some(at) => Timer::at(at).await,
                    None => std::future::pending().await,
                };
                Wake::Timeout
            };
            let wake = network.or(input).or(timer).await;

            let now = Instant::now();
            match wake {
                Wake::Net(id, event) => self.handle_net(id, event, now),
                Wake::Input(UserInput::Line(line)) => {
                    self.client.handle_line(&line, now);
                    // Not reading means not in raw mode: the lines printed
                    // just before the exit (a logout's confirmation) appear
                    // at once instead of waiting for a prompt redraw.
                    if let Some(prompt) = &mut self.session.prompt {
                        // A command may have changed the current room.
                        prompt.set_prompt(self.client.prompt());
                        prompt.resume(self.client.reads_lines());
                    }
                }
                Wake::Input(UserInput::End) => {
                    self.input_open = false;
                    if let Some(prompt) = &mut self.session.prompt {
                        prompt.ended();
                    }
                    self.client.handle_end_of_input(now);
                }
                Wake::Timeout => self.client.handle_timeout(now),
            }
        }
    }

    fn perform(&mut self, action: Action, net_events: &Sender<(u64, NetEvent)>) {
        match action {
            Action::Connect { subprotocol } => {
                self.next_id += 1;
                // Replacing the old connection (if any) aborts it.
                self.current = Some(Connection::open(
                    &self.session.url,
                    subprotocol,
                    self.next_id,
                    net_events.clone(),
                ));
            }
            Action::Send(text) => {
                if let Some(connection) = &self.current {
                    connection.send_text(text);
                }
            }
            Action::Ping => {
                if let Some(connection) = &self.current {
                    connection.ping();
                }
            }
            Action::Close => {
                if let Some(connection) = self.current.take() {
                    self.closing.retain(|task| !task.is_finished());
                    self.closing.push(smol::spawn(connection.close()));
                }
            }
        }
    }

    fn handle_net(&mut self, id: u64, event: NetEvent, now: Instant) {
        if self.current.as_ref().is_none_or(|c| c.id != id) {
            return; // from a connection the core has given up on
        }
        match event {
            NetEvent::Connected { subprotocol } => {
                self.client.handle_connected(subprotocol.as_deref(), now);
            }
            NetEvent::SubprotocolRefused => {
                self.current = None;
                self.client.handle_subprotocol_refused(now);
            }
            NetEvent::Text(text) => self.client.handle_text(&text, now),
            NetEvent::Activity => self.client.handle_activity(now),
            NetEvent::Closed(reason) => {
                self.current = None;
                self.client.handle_disconnected(&reason, now);
            }
            NetEvent::Unreachable(reason) => {
                self.current = None;
                self.client.handle_unreachable(&reason, now);
            }
        }
    }

    /// Shows or saves what the core reports; `Some` when it is finished.
    async fn handle_event(&mut self, event: Event) -> Option<Exit> {
        match event {
            Event::Line(line) => self.show(&line).await,
            Event::SecretIssued { username, secret } => self.save_secret(username, secret).await,
            Event::AskName(reason) => return self.ask_name(reason.as_deref()).await,
            Event::ServerStore(epoch) => self.save_epoch(epoch).await,
            Event::Bell => {
                let _ = self.printer.send(Output::Bell).await;
            }
            Event::Pending(lines) => {
                let time = local_time();
                let rows = lines
                    .iter()
                    .map(|line| {
                        let text = line.render(time, false);
                        let mark = line.pending_mark().unwrap_or_default();
                        let text = text.strip_suffix(mark).unwrap_or(&text).trim_end();
                        (text.to_owned(), mark)
                    })
                    .collect();
                let _ = self.printer.send(Output::Pending(rows)).await;
            }
            Event::Finished(exit) => {
                // `/quit` or Ctrl-D: the name stays reserved; say for how long.
                if let Some(line) = self.client.farewell() {
                    self.show(&line).await;
                }
                return Some(exit);
            }
        }
        None
    }

    async fn show(&self, line: &Line) {
        // The server's time of the event when it gave one (v2), so caught-up
        // messages show when they were said; else the time of printing.
        let time = line
            .timestamp()
            .and_then(local_time_of)
            .unwrap_or_else(local_time);
        let text = line.render(time, self.session.colour);
        let _ = self.printer.send(terminal::output(line, text)).await;
    }

    async fn save_secret(&self, username: String, secret: String) {
        let Some(file) = self.session.secrets.clone() else {
            return;
        };
        let url = self.session.url.clone();
        let (name, value) = (username.clone(), secret.clone());
        let saved = smol::unblock(move || file.save(&url, &name, &value)).await;
        let line = match saved {
            Ok(None) => return,
            Ok(Some(note)) => Line::Status(note),
            Err(e) => Line::Error(format!(
                "{e}; to keep the name '{username}' next time, keep this secret and give it \
                 in CHAT_SECRET or with --secret-file: {secret}"
            )),
        };
        self.show(&line).await;
    }

    async fn save_epoch(&self, epoch: String) {
        let Some(file) = self.session.secrets.clone() else {
            return;
        };
        let url = self.session.url.clone();
        let saved = smol::unblock(move || file.save_epoch(&url, &epoch)).await;
        let line = match saved {
            Ok(None) => return,
            Ok(Some(note)) => Line::Status(note),
            // Only costs recognising this server under another address.
            Err(e) => Line::Error(e.to_string()),
        };
        self.show(&line).await;
    }

    /// Asks for a name (once connected, or after the server refused one,
    /// saying why); `Some` when the user gives up.
    async fn ask_name(&mut self, reason: Option<&str>) -> Option<Exit> {
        if let Some(reason) = reason {
            self.show(&Line::Error(reason.to_owned())).await;
        }
        let colour = self.session.colour;
        let printer = self.printer.clone();
        // Through the printer, in order with everything else it shows.
        let mut say = |why: String| {
            let line = Line::Error(why);
            let text = line.render(local_time(), colour);
            let _ = printer.send_blocking(terminal::output(&line, text));
        };
        let prompt = self.session.prompt.as_mut()?;
        let name = match prompt.ask_name(&mut say) {
            Answer::Given(name) => name,
            Answer::Cancelled => return Some(Exit::Cancelled),
            Answer::Ended => return Some(Exit::Failure("no name given".into())),
        };
        let saved = self.session.secrets.as_ref().map(|file| match file.load() {
            Ok(store) => store.lookup(&self.session.url, &name),
            Err(_) => Saved::default(), // said at the start
        });
        self.client
            .handle_name_saved(&name, saved.unwrap_or_default(), Instant::now());
        None
    }

    /// In interactive mode, the prompt appears once logged in, so a refused
    /// name or an unreachable server ends chat-cli before it takes the
    /// terminal.
    fn start_prompt_once_online(&mut self) {
        if !self.client.is_online() {
            return;
        }
        let Some(typed) = self.typed.take() else {
            return;
        };
        if let Some(prompt) = &mut self.session.prompt {
            prompt.start(self.client.prompt(), typed);
        }
    }

    /// Hands who is online to the completer when it changed.
    fn share_roster(&mut self) {
        let Some(prompt) = &self.session.prompt else {
            return;
        };
        let seen = (
            self.client.roster().generation(),
            self.client.username().to_owned(),
        );
        if self.roster_seen.as_ref() != Some(&seen) {
            let online = self.client.roster().names().map(str::to_owned).collect();
            prompt.set_names(online, &seen.1);
            let rooms = self.client.roster().rooms();
            prompt.set_rooms(rooms.map(|rooms| rooms.map(str::to_owned).collect()));
            self.roster_seen = Some(seen);
        }
    }

    /// Lets closing connections finish their handshake (each is bounded).
    async fn finish(&mut self) {
        for task in self.closing.drain(..) {
            task.await;
        }
        self.current = None;
    }
}
