//! chat-cli in a pseudo-terminal, read through a vt100 terminal emulator:
//! tests look at the rows of the screen, as a person would. Shared by the
//! chat-cli PTY tests (`mod screen;` beside `mod clients;`).
#![allow(dead_code)] // each test binary uses a different part

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use rexpect::process::PtyProcess;

use super::clients::{TIMEOUT, chat_cli};

/// Rows and columns of the emulated terminal. chat-cli sees a
/// pseudo-terminal of no size and takes it as 80 columns, as terminals
/// usually are.
pub const ROWS: u16 = 40;
pub const COLUMNS: u16 = 80;

/// chat-cli in a pseudo-terminal whose output goes through a vt100
/// emulator: tests look at the rows of the screen, as a person would.
pub struct Screen {
    pub process: PtyProcess,
    input: File,
    output: Receiver<Vec<u8>>,
    pub parser: vt100::Parser<Bells>,
}

/// Counts the bells the terminal rang.
#[derive(Default)]
pub struct Bells(usize);

impl vt100::Callbacks for Bells {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.0 += 1;
    }
}

impl Screen {
    /// chat-cli with `args`, without colour (NO_COLOR is set).
    pub fn start(state: &Path, args: &[&str]) -> Screen {
        Screen::start_with(chat_cli(state, args))
    }

    /// chat-cli with `args`, in colour.
    pub fn start_in_colour(state: &Path, args: &[&str]) -> Screen {
        let mut command = chat_cli(state, args);
        command.env_remove("NO_COLOR");
        Screen::start_with(command)
    }

    pub fn start_with(mut command: std::process::Command) -> Screen {
        command.env("TERM", "xterm");
        let mut process = PtyProcess::new(command).expect("start chat-cli in a pty");
        process.set_kill_timeout(Some(2_000));
        let input = process.get_file_handle().expect("the pty");
        let mut reading = process.get_file_handle().expect("the pty");
        let (bytes, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            // Ends with an error (EIO) once chat-cli is gone.
            while let Ok(n @ 1..) = reading.read(&mut buffer) {
                if bytes.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let size = |n| std::num::NonZeroU16::new(n).expect("not zero");
        Screen {
            process,
            input,
            output,
            parser: vt100::Parser::new_with_callbacks(size(ROWS), size(COLUMNS), 0, Bells(0)),
        }
    }

    /// Types `keys` (`\r` is Enter, `\t` Tab).
    pub fn type_keys(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("type");
        self.input.flush().expect("type");
    }

    /// The rows of the screen without trailing blanks, down to the last
    /// row with something on it.
    pub fn rows(&self) -> Vec<String> {
        let mut rows: Vec<String> = self
            .parser
            .screen()
            .rows(0, COLUMNS)
            .map(|row| row.trim_end().to_owned())
            .collect();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows
    }

    /// Reads what chat-cli writes until the screen satisfies `check`;
    /// fails, showing the screen, after [`TIMEOUT`].
    pub fn wait_until(&mut self, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        match self.read_until(Instant::now() + TIMEOUT, check) {
            Ok(rows) => rows,
            Err(rows) => panic!("the screen never showed {what}:\n{}", rows.join("\n")),
        }
    }

    /// Reads what chat-cli writes until the screen satisfies `check`, or
    /// until `deadline` (then `Err` with the screen).
    pub fn read_until(
        &mut self,
        deadline: Instant,
        check: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, Vec<String>> {
        loop {
            let rows = self.rows();
            if check(&rows) {
                return Ok(rows);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.parser.process(&bytes),
                Err(RecvTimeoutError::Timeout) => return Err(rows),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("chat-cli ended:\n{}", rows.join("\n"))
                }
            }
        }
    }

    /// Waits until the last rows of the screen, their `HH:MM ` times
    /// removed, are `bottom`; returns the whole screen.
    pub fn wait_for_bottom(&mut self, bottom: &[&str]) -> Vec<String> {
        self.wait_until(&format!("{bottom:#?} at the bottom"), |rows| {
            rows.len() >= bottom.len()
                && rows[rows.len() - bottom.len()..]
                    .iter()
                    .map(|row| strip(row))
                    .eq(bottom.iter().copied())
        })
    }

    /// Waits until a row contains `text`; returns its row and column.
    pub fn wait_for_text(&mut self, text: &str) -> (u16, u16) {
        let rows = self.wait_until(&format!("{text:?}"), |rows| {
            rows.iter().any(|row| row.contains(text))
        });
        let (row, line) = rows
            .iter()
            .enumerate()
            .find(|(_, row)| row.contains(text))
            .expect("found");
        let column = line[..line.find(text).expect("found")].chars().count();
        (row as u16, column as u16)
    }

    /// Types `typed` then Tab until the prompt shows `completed`: the names
    /// online come a moment after the prompt, sooner than anyone types but
    /// not sooner than a test does.
    pub fn complete(&mut self, prompt: &str, typed: &str, completed: &str) {
        let last = format!("{prompt}{completed}").trim_end().to_owned();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.type_keys(&format!("{typed}\t"));
            let attempt = (Instant::now() + Duration::from_millis(500)).min(deadline);
            match self.read_until(attempt, |rows| rows.last() == Some(&last)) {
                Ok(_) => return,
                Err(rows) if Instant::now() >= deadline => panic!(
                    "Tab never completed {typed:?} to {completed:?}:\n{}",
                    rows.join("\n")
                ),
                Err(_) => self.type_keys("\x15"), // Ctrl-U: clear the line, try again
            }
        }
    }

    pub fn bells(&self) -> usize {
        self.parser.callbacks().0
    }

    /// Waits for chat-cli to exit; its status.
    pub fn exit_status(&mut self) -> WaitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.process.status() {
                Some(WaitStatus::StillAlive) | None => {}
                Some(status) => return status,
            }
            assert!(Instant::now() < deadline, "chat-cli did not exit");
            // Keep reading, so that chat-cli never blocks on a full pty.
            while let Ok(bytes) = self.output.try_recv() {
                self.parser.process(&bytes);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A row without its `HH:MM ` time.
pub fn strip(row: &str) -> &str {
    match row.as_bytes() {
        [a, b, b':', c, d, b' ', ..] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) => {
            &row[6..]
        }
        _ => row,
    }
}

/// How many rows contain `text`.
pub fn count(rows: &[String], text: &str) -> usize {
    rows.iter().filter(|row| row.contains(text)).count()
}
