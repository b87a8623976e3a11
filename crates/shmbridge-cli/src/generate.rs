//! What is generated from the clap definitions: shell completions (`clap_complete`), man pages
//! (`clap_mangen`) and the reference part of `docs/CLI.md`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::args::{Cli, Shell};
use crate::exit;
use crate::report::{errln, Outcome};

/// The command's clap definition, built (bin names and `--help` / `--version` filled in).
#[must_use]
pub fn command() -> Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

fn write_stdout(bytes: &[u8]) -> Outcome {
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)?;
    o.flush()?;
    Ok(())
}

/// `shmbridge completions SHELL`. Generated into memory first: the generators panic when a
/// write fails, and a closed pipe is not worth a panic.
pub fn completions(shell: Shell) -> Outcome {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shmbridge", &mut buf);
    write_stdout(&buf)
}

/// `shmbridge man [--out-dir DIR]`.
pub fn man(out_dir: Option<&Path>) -> Outcome {
    let cmd = command();
    match out_dir {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            write_stdout(&buf)
        }
        Some(dir) => {
            clap_mangen::generate_to(cmd, dir).map_err(|e| {
                shmbridge::Error::from_io(
                    &e,
                    format!("cannot write man pages to {}", dir.display()),
                )
                .with_path(dir)
            })?;
            errln!(
                "wrote shmbridge.1 and one page per command to {}",
                dir.display()
            );
            Ok(())
        }
    }
}

/// How an option is written in the reference: `-n, --name <NAME>`, `<FILE>`.
fn spelling(a: &Arg) -> String {
    let value = a.get_value_names().map_or_else(
        || format!("<{}>", a.get_id().as_str().to_uppercase()),
        |v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    if a.is_positional() {
        let dots = if matches!(a.get_action(), ArgAction::Append) {
            "..."
        } else {
            ""
        };
        return format!("{value}{dots}");
    }
    let mut s = String::new();
    if let Some(c) = a.get_short() {
        let _ = write!(s, "-{c}");
    }
    if let Some(l) = a.get_long() {
        if !s.is_empty() {
            s.push_str(", ");
        }
        let _ = write!(s, "--{l}");
    }
    if a.get_num_args().is_some_and(|n| n.takes_values()) {
        s.push(' ');
        s.push_str(&value);
    }
    s
}

fn help_of(a: &Arg) -> String {
    let mut h = a
        .get_long_help()
        .or_else(|| a.get_help())
        .map(ToString::to_string)
        .unwrap_or_default()
        .replace('\n', " ");
    if !h.is_empty() && !h.ends_with('.') {
        h.push('.');
    }
    let flag = matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && !flag {
        let _ = write!(h, " Default: `{}`.", defaults.join(" "));
    }
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() && !a.is_hide_possible_values_set() {
        let _ = write!(h, " One of {}.", values.join(", "));
    }
    h.replace('|', "\\|")
}

/// The reference part of `docs/CLI.md`: every command with its usage and options, then the
/// exit codes. A test checks that the file holds exactly this between its markers.
#[must_use]
pub fn reference_markdown() -> String {
    let cmd = command();
    let mut s = String::new();
    let global: Vec<&Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).collect();
    s.push_str("Options of every command: ");
    let g: Vec<String> = global
        .iter()
        .map(|a| {
            format!(
                "`{}` ({})",
                spelling(a),
                help_of(a).trim_end_matches('.').to_lowercase()
            )
        })
        .chain([
            "`-h, --help`".to_owned(),
            "`-V, --version` (`shmbridge` only)".to_owned(),
        ])
        .collect();
    s.push_str(&g.join(", "));
    s.push_str(".\n");
    for sub in cmd.get_subcommands() {
        let usage = sub
            .clone()
            .render_usage()
            .to_string()
            .trim_start_matches("Usage: ")
            .to_owned();
        let _ = write!(s, "\n### `shmbridge {}`\n\n", sub.get_name());
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(ToString::to_string)
            .unwrap_or_default()
            .replace('\n', " ");
        let _ = write!(s, "```\n{usage}\n```\n\n{about}\n");
        let args: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set())
            .filter(|a| {
                !matches!(
                    a.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
            })
            .collect();
        if !args.is_empty() {
            s.push_str("\n| argument | meaning |\n|---|---|\n");
            for a in args {
                let _ = writeln!(s, "| `{}` | {} |", spelling(a), help_of(a));
            }
        }
    }
    s.push_str("\n### Exit codes\n\n");
    s.push_str(&exit::markdown_table());
    s
}
