//! The user's side: lines in, display lines out, each on its own thread so
//! that nothing on the async executor ever blocks on a terminal or a pipe.
//!
//! Interactively, rustyline reads on a thread of its own and incoming lines
//! are printed through its external printer, which redraws the prompt and
//! the half-typed line below them. In a script, stdin is read line by line
//! and output goes straight to stdout (chat) and stderr (diagnostics).

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use smol::channel::{Receiver, Sender};

use crate::client::Line;
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
    /// The terminal bell (BEL), with no line.
    Bell,
}

/// The printing thread. Dropping the sender ends it; `finish` waits for it.
pub struct Printer {
    pub lines: Sender<Output>,
    thread: JoinHandle<()>,
}

impl Printer {
    /// Prints through rustyline's external printer when there is one (the
    /// prompt is redrawn below), else to stdout and stderr.
    pub fn start(mut external: Option<Box<dyn ExternalPrinter + Send>>) -> Printer {
        // Bounded: if stdout stalls, the driver waits instead of buffering
        // without limit.
        let (lines, queue) = smol::channel::bounded::<Output>(256);
        let thread = thread::spawn(move || {
            while let Ok(output) = queue.recv_blocking() {
                let result = match (&mut external, output) {
                    (Some(printer), Output::Chat(line) | Output::Diagnostic(line)) => printer
                        .print(line + "\n")
                        .map_err(|e| io::Error::other(e.to_string())),
                    (Some(printer), Output::Bell) => printer
                        .print("\x07".into())
                        .map_err(|e| io::Error::other(e.to_string())),
                    (None, Output::Bell) => {
                        let mut stdout = io::stdout().lock();
                        stdout.write_all(b"\x07").and_then(|()| stdout.flush())
                    }
                    (None, Output::Chat(line)) => writeln!(io::stdout().lock(), "{line}"),
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
    editor: Option<DefaultEditor>,
    history: Option<PathBuf>,
    /// After each line the thread waits to hear whether to read another:
    /// `/quit` must not leave a prompt behind.
    resume: Option<mpsc::Sender<bool>>,
    running: bool,
}

impl Prompt {
    pub fn new(history: Option<PathBuf>) -> rustyline::Result<Prompt> {
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .max_history_size(1000)?
            .build();
        let mut editor = DefaultEditor::with_config(config)?;
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
        })
    }

    /// Asks for a name until one that follows the name rule is given (an
    /// empty or invalid one is said and asked again), before the chat
    /// starts or after the server refused one.
    pub fn ask_name(&mut self) -> Answer {
        let Some(editor) = self.editor.as_mut() else {
            return Answer::Ended;
        };
        loop {
            let answer = match editor.readline("your name: ") {
                Ok(answer) => answer,
                Err(ReadlineError::Interrupted) => return Answer::Cancelled,
                Err(_) => return Answer::Ended,
            };
            let answer = answer.trim();
            match Username::parse(answer, usize::MAX) {
                Ok(_) => return Answer::Given(answer.to_owned()),
                Err(e) => eprintln!("that name cannot be used: {e}"),
            }
        }
    }

    /// A printer that keeps the prompt intact, when stdout is a terminal.
    pub fn external_printer(&mut self) -> Option<Box<dyn ExternalPrinter + Send>> {
        let printer = self.editor.as_mut()?.create_external_printer().ok()?;
        Some(Box::new(printer))
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
        let history = self.history.clone();
        let (resume, resumed) = mpsc::channel();
        self.resume = Some(resume);
        self.running = true;
        thread::spawn(move || {
            loop {
                match editor.readline(&prompt) {
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
