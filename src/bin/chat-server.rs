//! `chat-server`: hosts the chat. See `chat-server --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use async_signal::{Signal, Signals};
use clap::Parser;
use futures_util::StreamExt;
use tracing::info;
use tracing_subscriber::EnvFilter;
use wschat::serve::{ChatServer, LogFormat, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    if let Err(e) = options.check() {
        // A usage error, as clap reports its own (exit status 2).
        eprintln!("chat-server: {e}");
        return ExitCode::from(2);
    }
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with every cause: "cannot read the TLS key k.pem: …".
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Not `.init()`: that would also capture the `log` records of
    // tungstenite, whose trace level prints frame payloads, secrets included.
    let installed = match options.log_format {
        LogFormat::Text => {
            let logs = logs.with_ansi(std::io::stderr().is_terminal());
            tracing::subscriber::set_global_default(logs.finish())
        }
        // The event's fields at the top level beside timestamp, level,
        // target and message: what the text line shows, one key each.
        LogFormat::Json => tracing::subscriber::set_global_default(
            logs.json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    };
    installed.context("cannot set up logging")?;

    // Loads the TLS certificate and key (if given) before listening.
    let server = ChatServer::bind(options)?;
    let mut signals =
        Signals::new([Signal::Term, Signal::Int]).context("cannot install signal handlers")?;
    server.run(async move {
        if let Some(Ok(signal)) = signals.next().await {
            let name = if signal == Signal::Int {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            info!("received {name}");
        }
    })?;
    Ok(())
}
