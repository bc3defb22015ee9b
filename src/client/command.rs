//! What a typed line means: a message, or a `/command`.
//!
//! Every command is one row of [`COMMANDS`]: its name, its argument, its
//! help text and what it does. `/help` is generated from the table, so a
//! new command is one more row and one more [`Effect`].

/// One `/command`.
#[derive(Debug)]
pub struct Command {
    /// Typed after the slash.
    pub name: &'static str,
    /// The argument as shown in `/help` (empty when it takes none).
    pub args: &'static str,
    /// One line for `/help`.
    pub about: &'static str,
    /// What it does with its argument (the rest of the line, trimmed), or
    /// why the argument is wrong.
    pub run: fn(args: &str) -> Result<Effect, &'static str>,
}

/// Commands are known by their name.
impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Command {}

/// What a command asks the client to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Show the list of commands.
    Help,
    /// Say this as an action: sent as `* NAME ACTION`.
    Me(String),
    /// List who is online (v2).
    Who,
    /// Release the name at once, then exit (v2).
    Logout,
    /// Close the connection and exit.
    Quit,
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        args: "",
        about: "list the commands",
        run: |args| no_argument(args, Effect::Help),
    },
    Command {
        name: "me",
        args: "ACTION",
        about: "say what you are doing (others see \"* NAME ACTION\")",
        run: |args| match args {
            "" => Err("say what you are doing, e.g. /me waves"),
            action => Ok(Effect::Me(action.to_owned())),
        },
    },
    Command {
        name: "who",
        args: "",
        about: "list who is online",
        run: |args| no_argument(args, Effect::Who),
    },
    Command {
        name: "logout",
        args: "",
        about: "free your name now (its secret stops working) and leave",
        run: |args| no_argument(args, Effect::Logout),
    },
    Command {
        name: "quit",
        args: "",
        about: "leave; your name stays yours for a while (Ctrl-D does the same)",
        run: |args| no_argument(args, Effect::Quit),
    },
];

/// A command that takes no argument refuses one rather than ignore it:
/// `/quit now` might mean something the user expects to happen.
fn no_argument(args: &str, effect: Effect) -> Result<Effect, &'static str> {
    match args {
        "" => Ok(effect),
        _ => Err("it takes no argument"),
    }
}

/// A typed line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// Nothing to send (empty or only whitespace).
    Nothing,
    /// A message to send as it is.
    Say(&'a str),
    /// A known command and what it asks for.
    Run(Effect),
    /// A known command with a bad argument: show the hint.
    Usage {
        command: &'static Command,
        hint: &'static str,
    },
    /// `/name` that is no command.
    Unknown(&'a str),
}

/// Parses one typed line. A leading `//` escapes the slash: `//shrug`
/// sends `/shrug`.
pub fn parse(line: &str) -> Input<'_> {
    if line.trim().is_empty() {
        return Input::Nothing;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Input::Say(line);
    };
    if rest.starts_with('/') {
        return Input::Say(rest);
    }
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    // Commands are case-insensitive, as in IRC clients: /WHO is /who.
    match COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
        Some(command) => match (command.run)(args.trim()) {
            Ok(effect) => Input::Run(effect),
            Err(hint) => Input::Usage { command, hint },
        },
        None => Input::Unknown(name),
    }
}

/// The text of `/help`.
pub fn help() -> String {
    let rows: Vec<(String, &str)> = COMMANDS
        .iter()
        .map(|c| (usage(c), c.about))
        .chain([("//TEXT".to_owned(), "send TEXT starting with \"/\"")])
        .collect();
    let width = rows.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
    let mut text = String::from("commands:");
    for (usage, about) in rows {
        text.push_str(&format!("\n  {usage:width$}  {about}"));
    }
    text.push_str("\nCtrl-C clears the line; Ctrl-D leaves.");
    text
}

/// `/name ARGS`, as `/help` shows it.
pub fn usage(command: &Command) -> String {
    match command.args {
        "" => format!("/{}", command.name),
        args => format!("/{} {args}", command.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_are_messages_and_double_slash_escapes() {
        assert_eq!(parse("hello"), Input::Say("hello"));
        assert_eq!(
            parse(" /me is not a command"),
            Input::Say(" /me is not a command")
        );
        assert_eq!(parse("//shrug"), Input::Say("/shrug"));
        assert_eq!(parse("//"), Input::Say("/"));
        assert_eq!(parse(""), Input::Nothing);
        assert_eq!(parse(" \t "), Input::Nothing);
    }

    #[test]
    fn commands_are_found_in_the_table() {
        assert_eq!(parse("/help"), Input::Run(Effect::Help));
        assert_eq!(parse("/quit"), Input::Run(Effect::Quit));
        assert_eq!(
            parse("/me  waves  "),
            Input::Run(Effect::Me("waves".into()))
        );
        assert_eq!(parse("/me\twaves"), Input::Run(Effect::Me("waves".into())));
        assert!(matches!(
            parse("/me"),
            Input::Usage { command, hint } if command.name == "me" && hint.contains("/me waves")
        ));
        assert_eq!(parse("/who"), Input::Run(Effect::Who));
        assert_eq!(parse("/logout"), Input::Run(Effect::Logout));
        assert_eq!(parse("/whois"), Input::Unknown("whois"));
        assert_eq!(parse("/"), Input::Unknown(""));
        assert_eq!(parse("/HELP"), Input::Run(Effect::Help));
        assert_eq!(parse("/Who"), Input::Run(Effect::Who));
        assert_eq!(parse("/ME waves"), Input::Run(Effect::Me("waves".into())));
        assert!(matches!(
            parse("/quit now"),
            Input::Usage { command, hint } if command.name == "quit" && hint == "it takes no argument"
        ));
        assert!(matches!(parse("/who alice"), Input::Usage { .. }));
        assert_eq!(parse("/quit  "), Input::Run(Effect::Quit));
    }

    #[test]
    fn help_lists_every_command_aligned() {
        let help = help();
        for command in COMMANDS {
            assert!(help.contains(&usage(command)), "{help}");
            assert!(help.contains(command.about), "{help}");
        }
        assert!(help.contains("  /me ACTION  say what"), "{help}");
        assert!(help.contains("  /quit       leave"), "{help}");
        assert!(help.contains("  /who        list who"), "{help}");
        assert!(help.contains("  /logout     free your name"), "{help}");
        assert!(help.contains("  //TEXT      send TEXT"), "{help}");
    }
}
