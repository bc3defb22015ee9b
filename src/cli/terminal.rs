//! The user's side: lines in, display lines out, each on its own thread so
//! that nothing on the async executor ever blocks on a terminal or a pipe.
//!
//! Interactively, rustyline reads on a thread of its own and incoming lines
//! are printed through its external printer, which redraws the prompt and
//! the half-typed line below them. In a script, stdin is read line by line
//! and output goes straight to stdout (chat) and stderr (diagnostics).
//!
//! Your line, once: when Enter is pressed, the line rustyline leaves on
//! screen is erased, and the message shows as a dim row below the chat,
//! marked `(sending…)` (or `(waiting for the connection)`), until the
//! server confirms it; then that row goes and the message takes its place
//! in the chat, once, in the order the server gave it. These pending rows
//! (the core's [`Event::Pending`](crate::client::Event::Pending)) are a
//! footer the printer keeps between the chat and the prompt: every line it
//! prints erases the footer, prints the line and draws the footer again, so
//! lines that arrive meanwhile go above it. Each footer row is cut to the
//! terminal's width, so the printer knows how many rows to erase.
//!
//! The terminal has two writers, the printer and rustyline. While rustyline
//! reads, the printer hands it each text (its external printer), which it
//! prints above the prompt; between two lines rustyline is not reading and
//! the printer would write at once, in the middle of the line being erased
//! or of the prompt being drawn. The [`Gate`] keeps it out: the editor
//! closes it when a key ends a line (Enter, Ctrl-C, Ctrl-D) and before
//! reading again, and opens it once the new prompt is drawn (rustyline asks
//! our hinter for a hint then).

use std::borrow::Cow;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustyline::completion::Completer;
use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Config, Editor, Event, EventContext, EventHandler,
    ExternalPrinter, GraphemeClusterMode, KeyCode, KeyEvent, Modifiers, RepeatCount,
};
use smol::channel::{Receiver, Sender};
use unicode_segmentation::UnicodeSegmentation;

use crate::client::{Line, completion, render};
use crate::username::Username;

/// A line from the user, or the end of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserInput {
    Line(String),
    End,
}

/// Where display lines go.
pub enum Output {
    /// A line for stdout (or the terminal).
    Chat(String),
    /// A line for stderr (or the terminal).
    Diagnostic(String),
    /// Ring the terminal bell (BEL) with the next line.
    Bell,
    /// The rows to keep in view below the chat from now on: the user's
    /// messages the server has not confirmed yet, each as plain text and a
    /// mark to end it with, which survives when the text is cut to the
    /// terminal's width. Only on a terminal.
    Pending(Vec<(String, &'static str)>),
}

/// The printing thread. Dropping the sender ends it; `finish` waits for it.
pub struct Printer {
    pub lines: Sender<Output>,
    thread: JoinHandle<()>,
}

impl Printer {
    /// Prints through rustyline's external printer when there is one (the
    /// prompt is redrawn below, and pending rows are kept in view above
    /// it, when `keep_rows`: on a terminal rustyline drives), else to
    /// stdout and stderr. `gate` is the editor's; `colour` dims the pending
    /// rows.
    pub fn start(
        mut external: Option<Box<dyn ExternalPrinter + Send>>,
        gate: Arc<Gate>,
        colour: bool,
        keep_rows: bool,
    ) -> Printer {
        // Bounded: if stdout stalls, the driver waits instead of buffering
        // without limit.
        let (lines, queue) = smol::channel::bounded::<Output>(256);
        let thread = thread::spawn(move || {
            let mut footer = Footer::default();
            let mut bell = false;
            while let Ok(output) = queue.recv_blocking() {
                let result = match (&mut external, output) {
                    (_, Output::Bell) => {
                        bell = true;
                        Ok(())
                    }
                    (Some(printer), Output::Chat(line) | Output::Diagnostic(line)) => {
                        let mut text = footer.erase();
                        if std::mem::take(&mut bell) {
                            text.push('\x07');
                        }
                        text.push_str(&line);
                        text.push('\n');
                        text.push_str(&footer.draw());
                        gate.pass(|| printer.print(text))
                            .map_err(|e| io::Error::other(e.to_string()))
                    }
                    (Some(printer), Output::Pending(rows)) if keep_rows => {
                        let mut text = footer.erase();
                        footer.set(rows, columns(), colour);
                        text.push_str(&footer.draw());
                        if text.is_empty() {
                            continue;
                        }
                        if !text.ends_with('\n') {
                            // Nothing left to draw: rustyline would end the
                            // text with a newline, leaving a blank row; one
                            // row up first makes that newline a no-op.
                            text.push_str("\x1b[A\n");
                        }
                        gate.pass(|| printer.print(text))
                            .map_err(|e| io::Error::other(e.to_string()))
                    }
                    // Not a terminal (or one without cursor movement): no
                    // rows to keep in view.
                    (_, Output::Pending(_)) => Ok(()),
                    (None, Output::Chat(line)) => {
                        let bell = if std::mem::take(&mut bell) {
                            "\x07"
                        } else {
                            ""
                        };
                        writeln!(io::stdout().lock(), "{bell}{line}")
                    }
                    (None, Output::Diagnostic(line)) => writeln!(io::stderr().lock(), "{line}"),
                };
                if result.is_err() {
                    return; // stdout is gone (a closed pipe): nothing more to show
                }
            }
        });
        Printer { lines, thread }
    }

    /// Waits until everything sent has been printed.
    pub fn finish(self) {
        drop(self.lines);
        let _ = self.thread.join();
    }
}

/// The rows kept in view below the chat, as last drawn.
#[derive(Default)]
struct Footer {
    rows: Vec<String>,
}

impl Footer {
    /// Erases the rows drawn, from the row below them (where rustyline
    /// leaves the cursor before it prints, and where the printer left it).
    fn erase(&self) -> String {
        match self.rows.len() {
            0 => String::new(),
            n => format!("\x1b[{n}A\r\x1b[J"),
        }
    }

    fn set(&mut self, rows: Vec<(String, &'static str)>, columns: u16, colour: bool) {
        // One column spare: a row as wide as the terminal would leave the
        // cursor waiting to wrap, which terminals handle differently.
        let width = usize::from(columns.saturating_sub(1)).max(1);
        self.rows = rows
            .iter()
            .map(|(text, mark)| {
                let row = match *mark {
                    "" => cut(text, width).into_owned(),
                    mark => {
                        let room = width.saturating_sub(render::width(mark) + 1).max(1);
                        format!("{} {mark}", cut(text, room))
                    }
                };
                render::dimmed(&row, colour)
            })
            .collect();
    }

    fn draw(&self) -> String {
        self.rows.iter().map(|row| format!("{row}\n")).collect()
    }
}

/// `text` cut to `width` columns, ending in `…` if it was longer.
fn cut(text: &str, width: usize) -> Cow<'_, str> {
    if render::width(text) <= width {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut used = 0;
    for grapheme in text.graphemes(true) {
        let w = render::width(grapheme);
        if used + w + 1 > width {
            break;
        }
        out.push_str(grapheme);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// The terminal's width in columns (80 when it cannot tell, as rustyline
/// assumes).
fn columns() -> u16 {
    match rustix::termios::tcgetwinsize(io::stdout()) {
        Ok(size) if size.ws_col > 0 => size.ws_col,
        _ => 80,
    }
}

/// Keeps the printer from writing to the terminal while the editor does
/// (see the module's documentation). Closed, the printer waits; but never
/// longer than `GATE_PATIENCE` (a second), so that a gate left closed by
/// mistake costs a garbled row rather than a hang.
pub struct Gate {
    /// Whether it is used at all: not on a terminal rustyline cannot drive
    /// (`TERM=dumb`), where no prompt is drawn to open it again.
    enabled: bool,
    closed: Mutex<bool>,
    changed: Condvar,
}

/// The longest the printer waits at a closed gate.
const GATE_PATIENCE: Duration = Duration::from_secs(1);

impl Gate {
    fn new(enabled: bool) -> Gate {
        Gate {
            enabled,
            closed: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    /// A gate that never closes (no editor).
    pub fn open_always() -> Arc<Gate> {
        Arc::new(Gate::new(false))
    }

    fn close(&self) {
        if self.enabled {
            *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
    }

    fn open(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if *closed {
            *closed = false;
            self.changed.notify_all();
        }
    }

    /// Runs `print` once the gate is open, keeping it open meanwhile.
    fn pass<T>(&self, print: impl FnOnce() -> T) -> T {
        let deadline = Instant::now() + GATE_PATIENCE;
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        while *closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            closed = self
                .changed
                .wait_timeout(closed, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        print()
    }
}

/// Opens the gate when dropped: however the editor thread ends, the
/// printer may then write at once.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// What the line editor needs from the chat: names to complete, and when
/// the printer may write.
struct ChatHelper {
    names: Arc<Mutex<Names>>,
    gate: Arc<Gate>,
}

/// Who is online, for completion, and the user's own name (not offered).
#[derive(Default)]
struct Names {
    online: Vec<String>,
    me: String,
    /// v3: the rooms to complete after `#`; `None` without rooms.
    rooms: Option<Vec<String>>,
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let found = completion::complete_with_rooms(
            line,
            pos,
            names.online.iter().map(String::as_str),
            names
                .rooms
                .as_ref()
                .map(|rooms| rooms.iter().map(String::as_str).collect()),
            &names.me,
        );
        Ok((found.start, found.candidates))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;

    /// Never a hint; but rustyline asks for one each time it draws the
    /// prompt and the line, in raw mode, where the printer's texts go
    /// through rustyline: the printer may go on.
    fn hint(&self, _: &str, _: usize, _: &rustyline::Context<'_>) -> Option<String> {
        self.gate.open();
        None
    }
}

impl Highlighter for ChatHelper {}
impl Validator for ChatHelper {}
impl rustyline::Helper for ChatHelper {}

/// Bound to the keys that make rustyline leave raw mode (Enter, Ctrl-J,
/// Ctrl-C, and Ctrl-D on an empty line): closes the gate and notes the
/// line on screen, then lets the key do what it does.
struct LineEnds {
    gate: Arc<Gate>,
    shown: Arc<Mutex<String>>,
    /// Ctrl-D: it ends the input only on an empty line (elsewhere it
    /// deletes a character).
    only_when_empty: bool,
}

impl ConditionalEventHandler for LineEnds {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if self.only_when_empty && !ctx.line().is_empty() {
            return None;
        }
        *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = ctx.line().to_owned();
        self.gate.close();
        None
    }
}

type ChatEditor = Editor<ChatHelper, DefaultHistory>;

/// How rustyline lays out text: the row after the prompt and `line`, from
/// the prompt's first row, where the cursor is once it has accepted the
/// line. The same arithmetic as rustyline's (graphemes, their widths, its
/// wrapping and tab stops), so that the rows can be erased exactly.
fn rows_after(text: &str, columns: u16, gcm: GraphemeClusterMode, tab_stop: u16) -> u16 {
    let columns = columns.max(1);
    let (mut row, mut col) = (0u16, 0u16);
    let mut escape = 0u8;
    for grapheme in text.graphemes(true) {
        if grapheme == "\n" {
            row = row.saturating_add(1);
            col = 0;
            continue;
        }
        let width = if grapheme == "\t" {
            tab_stop.max(1) - (col % tab_stop.max(1))
        } else {
            escaped_width(grapheme, gcm, &mut escape)
        };
        col = col.saturating_add(width);
        if col > columns {
            row = row.saturating_add(1);
            col = width;
        }
    }
    if col == columns {
        row = row.saturating_add(1);
    }
    row.saturating_add(1)
}

/// rustyline's width of a grapheme: none inside an escape sequence.
fn escaped_width(grapheme: &str, gcm: GraphemeClusterMode, escape: &mut u8) -> u16 {
    match *escape {
        1 => {
            *escape = if grapheme == "[" { 2 } else { 0 };
            0
        }
        2 => {
            if !(grapheme == ";" || grapheme.as_bytes()[0].is_ascii_digit()) {
                *escape = 0;
            }
            0
        }
        _ if grapheme == "\x1b" => {
            *escape = 1;
            0
        }
        _ => gcm.width(grapheme),
    }
}

/// Lines from a script's stdin. The channel holds one line, so the thread
/// reads no further ahead than the client takes.
pub fn read_stdin() -> Receiver<UserInput> {
    let (lines, receiver) = smol::channel::bounded(1);
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match stdin.read_until(b'\n', &mut buffer) {
                Ok(0) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer);
                    let line = line.trim_end_matches('\n').trim_end_matches('\r');
                    if lines
                        .send_blocking(UserInput::Line(line.to_owned()))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = lines.send_blocking(UserInput::End);
    });
    receiver
}

/// What the user answered to a question before the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Given(String),
    /// Ctrl-C.
    Cancelled,
    /// Ctrl-D, or the terminal is gone.
    Ended,
}

/// The interactive line editor, before and after its thread starts.
pub struct Prompt {
    editor: Option<ChatEditor>,
    history: Option<PathBuf>,
    /// After each line the thread waits to hear whether to read another:
    /// `/quit` must not leave a prompt behind.
    resume: Option<mpsc::Sender<bool>>,
    running: bool,
    gate: Arc<Gate>,
    names: Arc<Mutex<Names>>,
    /// The line on screen when the last key that ends a line was pressed.
    shown: Arc<Mutex<String>>,
    /// Erase each line once entered: stdout is a terminal rustyline drives.
    erase: bool,
    /// The prompt of the next line read.
    text: Arc<Mutex<String>>,
}

/// Terminals rustyline does not drive (it reads plain lines there).
const UNSUPPORTED_TERMS: [&str; 3] = ["dumb", "cons25", "emacs"];

impl Prompt {
    pub fn new(history: Option<PathBuf>) -> rustyline::Result<Prompt> {
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .max_history_size(1000)?
            .build();
        let term = std::env::var("TERM").unwrap_or_default();
        let drives = !UNSUPPORTED_TERMS.contains(&term.as_str());
        let gate = Arc::new(Gate::new(drives));
        let names = Arc::new(Mutex::new(Names::default()));
        let shown = Arc::new(Mutex::new(String::new()));
        let mut editor = ChatEditor::with_config(config)?;
        editor.set_helper(Some(ChatHelper {
            names: names.clone(),
            gate: gate.clone(),
        }));
        for key in [
            KeyEvent(KeyCode::Enter, Modifiers::NONE),
            KeyEvent::ctrl('J'),
            KeyEvent::ctrl('M'),
            KeyEvent::ctrl('C'),
            KeyEvent::ctrl('D'),
        ] {
            let handler = LineEnds {
                gate: gate.clone(),
                shown: shown.clone(),
                only_when_empty: key == KeyEvent::ctrl('D'),
            };
            editor.bind_sequence(key, EventHandler::Conditional(Box::new(handler)));
        }
        if let Some(path) = &history {
            let _ = editor.load_history(path); // none yet is fine
            if let Some(dir) = path.parent() {
                // rustyline creates the file (0600), not its directory.
                let _ = super::state::create_private_dir(dir);
            }
        }
        Ok(Prompt {
            editor: Some(editor),
            history,
            resume: None,
            running: false,
            gate,
            names,
            shown,
            erase: drives && io::stdout().is_terminal(),
            text: Arc::new(Mutex::new(String::new())),
        })
    }

    /// Asks for a name until one that follows the name rule is given (an
    /// empty or invalid one is handed to `say`, why, and asked again),
    /// before the chat starts or after the server refused one.
    pub fn ask_name(&mut self, say: &mut dyn FnMut(String)) -> Answer {
        let Some(editor) = self.editor.as_mut() else {
            return Answer::Ended;
        };
        // Whatever the answer, the printer may write once it is given.
        let _open = OpenOnDrop(self.gate.clone());
        loop {
            // Closed until the prompt is drawn: what `say` was told goes
            // above it, not into it.
            self.gate.close();
            let answer = match editor.readline("your name: ") {
                Ok(answer) => answer,
                Err(ReadlineError::Interrupted) => return Answer::Cancelled,
                Err(_) => return Answer::Ended,
            };
            let answer = answer.trim();
            match Username::parse(answer, usize::MAX) {
                Ok(_) => return Answer::Given(answer.to_owned()),
                Err(e) => say(format!("that name cannot be used: {e}")),
            }
        }
    }

    /// A printer that keeps the prompt intact, when stdout is a terminal.
    pub fn external_printer(&mut self) -> Option<Box<dyn ExternalPrinter + Send>> {
        let printer = self.editor.as_mut()?.create_external_printer().ok()?;
        Some(Box::new(printer))
    }

    /// Whether stdout is a terminal whose rows can be erased and redrawn:
    /// then the line entered is erased and pending rows are kept in view.
    pub fn keeps_rows(&self) -> bool {
        self.erase
    }

    /// The gate the printer must pass (see [`Gate`]).
    pub fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    /// Who is online, for tab completion, and the user's own name.
    pub fn set_names(&self, online: Vec<String>, me: &str) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.online = online;
        me.clone_into(&mut names.me);
    }

    /// v3: the rooms Tab completes after `#` (`None`: the server has none).
    pub fn set_rooms(&self, rooms: Option<Vec<String>>) {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).rooms = rooms;
    }

    /// The prompt of the next line read (the current room: `#dev> `).
    pub fn set_prompt(&self, prompt: String) {
        *self.text.lock().unwrap_or_else(|e| e.into_inner()) = prompt;
    }

    /// Whether the editor thread is reading (the terminal is in raw mode).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Starts reading lines with `prompt` on the editor's own thread.
    pub fn start(&mut self, prompt: String, lines: Sender<UserInput>) {
        let Some(mut editor) = self.editor.take() else {
            return;
        };
        self.set_prompt(prompt);
        let text = self.text.clone();
        let history = self.history.clone();
        let (resume, resumed) = mpsc::channel();
        self.resume = Some(resume);
        self.running = true;
        let gate = self.gate.clone();
        let shown = self.shown.clone();
        let erase = self.erase;
        thread::spawn(move || {
            let _open = OpenOnDrop(gate.clone());
            loop {
                gate.close();
                let prompt = text.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let read = editor.readline(&prompt);
                if erase {
                    let line = match &read {
                        Ok(line) => line.clone(),
                        Err(_) => {
                            std::mem::take(&mut *shown.lock().unwrap_or_else(|e| e.into_inner()))
                        }
                    };
                    erase_entered(&mut editor, &prompt, &line);
                }
                match read {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                            if let Some(path) = &history {
                                let _ = editor.append_history(path);
                            }
                        }
                        if lines.send_blocking(UserInput::Line(line)).is_err() {
                            return;
                        }
                        if resumed.recv() != Ok(true) {
                            return;
                        }
                    }
                    // Ctrl-C: the typed line is dropped; a fresh prompt.
                    Err(ReadlineError::Interrupted) => {}
                    Err(_) => break, // Ctrl-D, or the terminal is gone
                }
            }
            let _ = lines.send_blocking(UserInput::End);
        });
    }

    /// The last line was handled: read another, or stop for good.
    pub fn resume(&mut self, more: bool) {
        if let Some(resume) = &self.resume {
            let _ = resume.send(more);
        }
        if !more {
            self.running = false;
        }
    }

    /// The editor thread ended by itself (Ctrl-D).
    pub fn ended(&mut self) {
        self.running = false;
    }
}

/// Erases the prompt and the line rustyline left on screen when a line was
/// entered (or cancelled, or ended): the message shows pending below the
/// chat, then once confirmed in it; a command shows what it does.
fn erase_entered(editor: &mut ChatEditor, prompt: &str, line: &str) {
    let config = editor.config_mut();
    let gcm = config.grapheme_cluster_mode();
    let tab_stop = u16::from(config.tab_stop());
    let rows = rows_after(&format!("{prompt}{line}"), columns(), gcm, tab_stop);
    let mut stdout = io::stdout().lock();
    let _ = write!(stdout, "\x1b[{rows}A\r\x1b[J");
    let _ = stdout.flush();
}

/// Routes a display line: chat to stdout, the rest to stderr.
pub fn output(line: &Line, text: String) -> Output {
    if line.is_chat() {
        Output::Chat(text)
    } else {
        Output::Diagnostic(text)
    }
}

/// The terminal's settings, to put back if chat-cli must exit while the
/// editor thread holds the terminal in raw mode.
pub struct TerminalGuard {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl TerminalGuard {
    pub fn save() -> TerminalGuard {
        TerminalGuard {
            #[cfg(unix)]
            saved: nix::sys::termios::tcgetattr(io::stdin()).ok(),
        }
    }

    /// Restores the saved settings and turns off bracketed paste, as
    /// rustyline would on its way out.
    pub fn restore(&self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                saved,
            );
        }
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(b"\x1b[?2004l\r\n");
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WC: GraphemeClusterMode = GraphemeClusterMode::WcWidth;

    #[test]
    fn rows_are_counted_as_rustyline_lays_them_out() {
        let rows = |text: &str| rows_after(text, 10, WC, 8);
        assert_eq!(rows(""), 1);
        assert_eq!(rows("alice> hi"), 1);
        // Exactly as wide as the terminal: the cursor goes to the next row.
        assert_eq!(rows("alice> abc"), 2);
        assert_eq!(rows("alice> abcd"), 2);
        assert_eq!(rows("alice> hi\nthere\nyou"), 3);
        // A full row then a newline: one step down, not two.
        assert_eq!(rows("alice> one\ntwo"), 2);
        // A wide character that does not fit goes to the next row whole.
        assert_eq!(rows("alice> ab李"), 2);
        assert_eq!(rows("李李李李李"), 2);
        // A tab goes to the next stop; an escape sequence takes no room.
        assert_eq!(rows("a\tbc"), 2);
        assert_eq!(rows("\x1b[1mabcdefghi"), 1);
    }

    #[test]
    fn a_pending_row_is_cut_to_the_width_it_has() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly 10", 10), "exactly 10");
        assert_eq!(cut("a bit too long", 10), "a bit too…");
        assert_eq!(cut("李李李李李李", 6), "李李…");
    }
}
