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
    /// v3: join a room (`#name`), or switch to it if already in it.
    Join(String),
    /// v3: leave a room (the current one when `None`), with a reason.
    Part {
        room: Option<String>,
        reason: Option<String>,
    },
    /// v3: a direct message.
    Msg { to: String, text: String },
    /// v3: talk to a name (`@name`) from now on.
    Query(String),
    /// v3: the public rooms and this name's own.
    Rooms,
    /// v3: the current room's members and roles (the lobby: who is online).
    Names,
    /// v3: where unread messages wait.
    Unread,
    /// v3: show the current room's topic, or set it.
    Topic(Option<String>),
    /// v3 (operator): a moderation act on a name in the current room.
    Moderate(Moderation),
    /// v3 (operator): make the current room invite-only (`true`) or public.
    Mode(bool),
}

/// A moderation act on one name in the current room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moderation {
    Invite(String),
    Kick {
        name: String,
        reason: Option<String>,
    },
    /// For `seconds`, or for good.
    Ban {
        name: String,
        seconds: Option<u64>,
    },
    Unban(String),
    Mute {
        name: String,
        seconds: Option<u64>,
    },
    Unmute(String),
    Op(String),
    Deop(String),
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
        about: "list who is online (in a room: its members and their roles)",
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

/// The commands of rooms and direct messages (protocol v3), listed by
/// `/help` after the others.
pub const ROOM_COMMANDS: &[Command] = &[
    Command {
        name: "join",
        args: "#ROOM",
        about: "join a room (created if new), or switch to it",
        run: |args| room_argument(args).map(Effect::Join),
    },
    Command {
        name: "part",
        args: "[#ROOM] [REASON]",
        about: "leave a room (the current one if none is named)",
        run: |args| {
            let (first, rest) = split_word(args);
            if first.starts_with('#') {
                Ok(Effect::Part {
                    room: Some(first.to_owned()),
                    reason: some(rest),
                })
            } else {
                Ok(Effect::Part {
                    room: None,
                    reason: some(args),
                })
            }
        },
    },
    Command {
        name: "msg",
        args: "NAME TEXT",
        about: "send a direct message to NAME",
        run: |args| match split_word(args) {
            ("", _) | (_, "") => Err("name someone and say something, e.g. /msg bob lunch?"),
            (to, text) => Ok(Effect::Msg {
                to: to.trim_start_matches('@').to_owned(),
                text: text.to_owned(),
            }),
        },
    },
    Command {
        name: "query",
        args: "NAME",
        about: "talk to NAME in direct messages from now on",
        run: |args| name_argument(args).map(Effect::Query),
    },
    Command {
        name: "rooms",
        args: "",
        about: "the public rooms and yours: members, topics, unread",
        run: |args| no_argument(args, Effect::Rooms),
    },
    Command {
        name: "names",
        args: "",
        about: "the current room's members and their roles",
        run: |args| no_argument(args, Effect::Names),
    },
    Command {
        name: "unread",
        args: "",
        about: "where unread messages wait",
        run: |args| no_argument(args, Effect::Unread),
    },
    Command {
        name: "topic",
        args: "[TEXT]",
        about: "show the current room's topic, or set it (operator)",
        run: |args| Ok(Effect::Topic(some(args))),
    },
    Command {
        name: "invite",
        args: "NAME",
        about: "let NAME into an invite-only room (operator)",
        run: |args| name_argument(args).map(|n| Effect::Moderate(Moderation::Invite(n))),
    },
    Command {
        name: "kick",
        args: "NAME [REASON]",
        about: "remove NAME from the current room (operator)",
        run: |args| match split_word(args) {
            ("", _) => Err("name who to remove, e.g. /kick bob spamming"),
            (name, reason) => Ok(Effect::Moderate(Moderation::Kick {
                name: name.to_owned(),
                reason: some(reason),
            })),
        },
    },
    Command {
        name: "ban",
        args: "NAME [DURATION]",
        about: "remove NAME and keep them out (operator)",
        run: |args| {
            name_and_duration(args)
                .map(|(name, seconds)| Effect::Moderate(Moderation::Ban { name, seconds }))
        },
    },
    Command {
        name: "unban",
        args: "NAME",
        about: "lift a ban on NAME (operator)",
        run: |args| name_argument(args).map(|n| Effect::Moderate(Moderation::Unban(n))),
    },
    Command {
        name: "mute",
        args: "NAME [DURATION]",
        about: "NAME may read but not say (operator)",
        run: |args| {
            name_and_duration(args)
                .map(|(name, seconds)| Effect::Moderate(Moderation::Mute { name, seconds }))
        },
    },
    Command {
        name: "unmute",
        args: "NAME",
        about: "lift a mute on NAME (operator)",
        run: |args| name_argument(args).map(|n| Effect::Moderate(Moderation::Unmute(n))),
    },
    Command {
        name: "op",
        args: "NAME",
        about: "make NAME an operator of the room (owner)",
        run: |args| name_argument(args).map(|n| Effect::Moderate(Moderation::Op(n))),
    },
    Command {
        name: "deop",
        args: "NAME",
        about: "make an operator a plain member again (owner)",
        run: |args| name_argument(args).map(|n| Effect::Moderate(Moderation::Deop(n))),
    },
    Command {
        name: "mode",
        args: "+i|-i",
        about: "make the room invite-only (+i) or public (-i)",
        run: |args| match args {
            "+i" => Ok(Effect::Mode(true)),
            "-i" => Ok(Effect::Mode(false)),
            _ => Err("+i makes the room invite-only, -i public"),
        },
    },
];

/// Every command: the general ones, then the rooms'.
pub fn all_commands() -> impl Iterator<Item = &'static Command> {
    COMMANDS.iter().chain(ROOM_COMMANDS)
}

/// The first word of `args` and the rest, trimmed.
fn split_word(args: &str) -> (&str, &str) {
    match args.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, rest.trim()),
        None => (args, ""),
    }
}

fn some(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// One room name, `#` included (added when left out).
fn room_argument(args: &str) -> Result<String, &'static str> {
    match split_word(args) {
        ("", _) | ("#", _) => Err("name the room, e.g. /join #dev"),
        (room, "") if room.starts_with('#') => Ok(room.to_owned()),
        (room, "") => Ok(format!("#{room}")),
        _ => Err("a room name has no spaces"),
    }
}

/// One name (a leading `@` is dropped).
fn name_argument(args: &str) -> Result<String, &'static str> {
    match split_word(args) {
        ("", _) => Err("name someone, e.g. bob"),
        (name, "") => Ok(name.trim_start_matches('@').to_owned()),
        _ => Err("it takes one name"),
    }
}

fn name_and_duration(args: &str) -> Result<(String, Option<u64>), &'static str> {
    match split_word(args) {
        ("", _) => Err("name someone, and for how long if not for good: 30s, 10m, 2h, 1d"),
        (name, "") => Ok((name.trim_start_matches('@').to_owned(), None)),
        (name, duration) => match parse_duration(duration) {
            Some(seconds) => Ok((name.trim_start_matches('@').to_owned(), Some(seconds))),
            None => Err("a duration is a number and s, m, h or d: 30s, 10m, 2h, 1d"),
        },
    }
}

/// `90`, `30s`, `10m`, `2h`, `1d`: in seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit).filter(|&s| s > 0)
}

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
    match all_commands().find(|c| c.name.eq_ignore_ascii_case(name)) {
        Some(command) => match (command.run)(args.trim()) {
            Ok(effect) => Input::Run(effect),
            Err(hint) => Input::Usage { command, hint },
        },
        None => Input::Unknown(name),
    }
}

/// The text of `/help`: the general commands, then those of rooms, each
/// part aligned on its own.
pub fn help() -> String {
    let rows: Vec<(String, &str)> = COMMANDS
        .iter()
        .map(|c| (usage(c), c.about))
        .chain([("//TEXT".to_owned(), "send TEXT starting with \"/\"")])
        .collect();
    let mut text = String::from("commands:");
    aligned(&mut text, rows);
    text.push_str("\nrooms and direct messages (servers that speak protocol v3):");
    aligned(
        &mut text,
        ROOM_COMMANDS.iter().map(|c| (usage(c), c.about)).collect(),
    );
    text.push_str("\n  A line of another room starts with its name: [#ops] 14:02 bob: hi");
    text.push_str("\n  Tab completes #rooms; DURATION is 30s, 10m, 2h or 1d (none: for good).");
    text.push_str("\nCtrl-C clears the line; Ctrl-D leaves.");
    text
}

fn aligned(text: &mut String, rows: Vec<(String, &str)>) {
    let width = rows.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
    for (usage, about) in rows {
        text.push_str(&format!("\n  {usage:width$}  {about}"));
    }
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
        for line in help.lines() {
            assert!(
                line.chars().count() <= 78,
                "too wide for a terminal: {line:?}"
            );
        }
        for command in COMMANDS {
            assert!(help.contains(&usage(command)), "{help}");
            assert!(help.contains(command.about), "{help}");
        }
        assert!(help.contains("  /me ACTION  say what"), "{help}");
        assert!(help.contains("  /quit       leave"), "{help}");
        assert!(help.contains("  /who        list who"), "{help}");
        assert!(help.contains("  /logout     free your name"), "{help}");
        assert!(help.contains("  //TEXT      send TEXT"), "{help}");
        for command in ROOM_COMMANDS {
            assert!(help.contains(&usage(command)), "{help}");
            assert!(help.contains(command.about), "{help}");
        }
        assert!(
            help.contains("  /join #ROOM             join a room (created if new)"),
            "{help}"
        );
    }

    #[test]
    fn room_commands_take_their_arguments() {
        assert_eq!(parse("/join #dev"), Input::Run(Effect::Join("#dev".into())));
        assert_eq!(parse("/JOIN dev"), Input::Run(Effect::Join("#dev".into())));
        assert!(matches!(parse("/join"), Input::Usage { .. }));
        assert_eq!(
            parse("/part #dev see you"),
            Input::Run(Effect::Part {
                room: Some("#dev".into()),
                reason: Some("see you".into())
            })
        );
        assert_eq!(
            parse("/part bye all"),
            Input::Run(Effect::Part {
                room: None,
                reason: Some("bye all".into())
            })
        );
        assert_eq!(
            parse("/msg @bob lunch at one?"),
            Input::Run(Effect::Msg {
                to: "bob".into(),
                text: "lunch at one?".into()
            })
        );
        assert!(matches!(parse("/msg bob"), Input::Usage { .. }));
        assert_eq!(parse("/query bob"), Input::Run(Effect::Query("bob".into())));
        assert_eq!(parse("/topic"), Input::Run(Effect::Topic(None)));
        assert_eq!(
            parse("/topic builds  and tests"),
            Input::Run(Effect::Topic(Some("builds  and tests".into())))
        );
        assert_eq!(
            parse("/ban bob 2h"),
            Input::Run(Effect::Moderate(Moderation::Ban {
                name: "bob".into(),
                seconds: Some(7200)
            }))
        );
        assert_eq!(
            parse("/mute bob"),
            Input::Run(Effect::Moderate(Moderation::Mute {
                name: "bob".into(),
                seconds: None
            }))
        );
        assert!(matches!(parse("/ban bob soon"), Input::Usage { .. }));
        assert_eq!(
            parse("/kick bob off topic"),
            Input::Run(Effect::Moderate(Moderation::Kick {
                name: "bob".into(),
                reason: Some("off topic".into())
            }))
        );
        assert_eq!(parse("/mode +i"), Input::Run(Effect::Mode(true)));
        assert_eq!(parse("/mode -i"), Input::Run(Effect::Mode(false)));
        assert!(matches!(parse("/mode i"), Input::Usage { .. }));
        assert_eq!(parse("/rooms"), Input::Run(Effect::Rooms));
        assert_eq!(parse("/names"), Input::Run(Effect::Names));
        assert_eq!(parse("/unread"), Input::Run(Effect::Unread));
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("0m"), None);
        assert_eq!(parse_duration("5y"), None);
    }
}
