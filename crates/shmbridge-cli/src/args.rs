//! The command line, as clap definitions: the help, the man page, the completions and the
//! reference part of `docs/CLI.md` are all generated from these.
//!
//! Short flags mean the same in every subcommand: `-q` quiet, `-n` the segment name, `-s`
//! stream, `-t` timeout, `-k` keep, `-j` JSON, `-a` all. Options that remove things or only
//! rarely matter (`--dry-run`, `--segment-size`, `--permissions`, `--fsync`) have long forms only.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// After the help of every subcommand: where the exit codes are (the table is only in
/// `shmbridge --help`, `man shmbridge` and docs/CLI.md).
const SEE_EXIT_CODES: &str = "Exit codes: 0 on success; `shmbridge --help` lists the others.";

/// Hand files between processes through shared memory, and look after the segments on this
/// machine.
#[derive(Parser, Debug)]
#[command(
    name = "shmbridge",
    bin_name = "shmbridge",
    version,
    after_help = crate::exit::plain_table(),
    disable_help_subcommand = true
)]
pub struct Cli {
    /// No progress bars or summaries on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Send FILE through a segment. One-shot (default): fill and publish a segment sized to the
    /// file, then exit leaving it for the receiver. --stream: stream it through a fixed ring,
    /// waiting for a receiver, and exit once it has taken and verified every byte.
    #[command(after_help = SEE_EXIT_CODES)]
    Send(SendArgs),
    /// Receive the file sent through segment NAME into OUT, atomically: OUT appears only once
    /// every byte has arrived and its CRC-32 matched.
    #[command(after_help = SEE_EXIT_CODES)]
    Recv {
        /// Segment name.
        name: String,
        /// Where to write the file.
        out: PathBuf,
        /// How long to wait for the sender (for the segment to appear, and for each next piece
        /// of a stream); 0 or "none" waits forever.
        #[arg(short, long, value_parser = parse_timeout, default_value = "60s", value_name = "DURATION")]
        timeout: Timeout,
        /// Leave the segment in place afterwards.
        #[arg(short, long)]
        keep: bool,
        /// fsync OUT before reporting success.
        #[arg(long)]
        fsync: bool,
        /// Also accept a segment owned by these users (uids, comma-separated), or by anyone
        /// (`any`). By default only this user's segments are received: anyone can create a
        /// segment under the name a receiver waits for.
        #[arg(long, value_parser = parse_owner, default_value = "self", value_name = "UIDS|any")]
        allow_owner: shmbridge::OwnerPolicy,
    },
    /// List the segments on this machine.
    #[command(after_help = SEE_EXIT_CODES)]
    Ls {
        /// Machine-readable output.
        #[arg(short, long)]
        json: bool,
    },
    /// Describe one segment in detail.
    #[command(after_help = SEE_EXIT_CODES)]
    Info {
        /// Segment name.
        name: String,
        /// Machine-readable output.
        #[arg(short, long)]
        json: bool,
    },
    /// Remove segments.
    #[command(after_help = SEE_EXIT_CODES)]
    Rm {
        /// Segment names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Write a framed segment's payload to standard output (a stream is consumed).
    #[command(after_help = SEE_EXIT_CODES)]
    Cat {
        /// Segment name.
        name: String,
        /// How long to wait for the payload.
        #[arg(short, long, value_parser = parse_timeout, default_value = "60s", value_name = "DURATION")]
        timeout: Timeout,
        /// Also accept a segment owned by these users (uids, comma-separated), or by anyone.
        #[arg(long, value_parser = parse_owner, default_value = "self", value_name = "UIDS|any")]
        allow_owner: shmbridge::OwnerPolicy,
    },
    /// Remove framed segments whose creator is dead (except complete one-shot payloads still
    /// waiting for their receiver, unless --all), among the NAMEs given or else all of them.
    #[command(after_help = SEE_EXIT_CODES)]
    Reap {
        /// Only consider these segments (a leading `/` is optional; any bytes but `/` and NUL).
        #[arg(value_name = "NAME", value_parser = clap::value_parser!(std::ffi::OsString))]
        names: Vec<std::ffi::OsString>,
        /// Also remove complete payloads nobody has received.
        #[arg(short, long)]
        all: bool,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Publish messages to a new channel NAME: each line of standard input (without its
    /// newline), or each FILE given, is one message; then close the channel. Readers take them
    /// with `shmbridge sub NAME` (or any library front).
    #[command(name = "pub", after_help = SEE_EXIT_CODES)]
    Pub(PubArgs),
    /// Take the messages of channel NAME until its writer closes it: each is written to
    /// standard output followed by a newline, or to a file of its own in --out-dir.
    #[command(after_help = SEE_EXIT_CODES)]
    Sub(SubArgs),
    /// Check /dev/shm: its size, free space, inodes and mount options, and whether this looks
    /// like a container with a small /dev/shm (with the flags that give it more).
    #[command(after_help = SEE_EXIT_CODES)]
    Doctor {
        /// Machine-readable output.
        #[arg(short, long)]
        json: bool,
    },
    /// Print a shell completion script (e.g. `shmbridge completions bash >
    /// /etc/bash_completion.d/shmbridge`).
    #[command(after_help = SEE_EXIT_CODES)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(after_help = SEE_EXIT_CODES)]
    Man {
        /// Write shmbridge.1 and shmbridge-COMMAND.1 here instead of printing shmbridge.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// The options of `send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The file to send.
    pub file: PathBuf,
    /// Segment name (default: the file's name, made safe).
    #[arg(short, long)]
    pub name: Option<String>,
    /// Stream through a ring of --segment-size bytes (for files of any size).
    #[arg(short, long)]
    pub stream: bool,
    /// Segment size for streaming (e.g. 64M); without --stream, a file larger than this
    /// streams. Default 16M.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub segment_size: Option<u64>,
    /// Streaming: how long to wait for a receiver to come or make progress (e.g. 30s,
    /// 500ms, 2m; 0 or "none" waits forever).
    #[arg(short, long, value_parser = parse_timeout, default_value = "60s", value_name = "DURATION")]
    pub timeout: Timeout,
    /// Permission bits of the segment, octal (default 600). `--mode` is its old name, still
    /// accepted.
    #[arg(long, alias = "mode", value_parser = parse_permissions, value_name = "OCTAL")]
    pub permissions: Option<u32>,
}

/// The options of `pub`.
#[derive(Args, Debug)]
pub struct PubArgs {
    /// Channel name.
    pub name: String,
    /// Files to publish, one message each (default: the lines of standard input).
    pub files: Vec<PathBuf>,
    /// Messages in flight at most (the channel's slots).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub slots: u32,
    /// The largest message (default: 64K, or the largest FILE).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub max_message: Option<u64>,
    /// Reader places.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub readers: u32,
    /// Never wait for slow readers: they lose the oldest messages instead (default: wait for
    /// the slowest live reader).
    #[arg(long)]
    pub overwrite: bool,
    /// How many past messages a reader that comes late starts with.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub history: u32,
    /// Give every message a CRC-32 that readers check.
    #[arg(long)]
    pub checksum: bool,
    /// Wait for this many readers before publishing.
    #[arg(short, long, default_value_t = 0, value_name = "N")]
    pub wait_readers: u32,
    /// How long to wait for readers (to come, or to make room); 0 or "none": no limit.
    #[arg(short, long, value_parser = parse_timeout, default_value = "none", value_name = "DURATION")]
    pub timeout: Timeout,
    /// Permission bits of the channel, octal (default 600). `--mode` is its old name, still
    /// accepted.
    #[arg(long, alias = "mode", value_parser = parse_permissions, value_name = "OCTAL")]
    pub permissions: Option<u32>,
}

/// The options of `sub`.
#[derive(Args, Debug)]
pub struct SubArgs {
    /// Channel name.
    pub name: String,
    /// Stop after this many messages.
    #[arg(short, long, value_name = "N")]
    pub count: Option<u64>,
    /// Write each message to DIR/<sequence>.msg instead of standard output.
    #[arg(short, long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// How long to wait for the channel to appear and for each next message; 0 or "none": no
    /// limit.
    #[arg(short, long, value_parser = parse_timeout, default_value = "none", value_name = "DURATION")]
    pub timeout: Timeout,
    /// Also accept a channel owned by these users (uids, comma-separated), or by anyone.
    #[arg(long, value_parser = parse_owner, default_value = "self", value_name = "UIDS|any")]
    pub allow_owner: shmbridge::OwnerPolicy,
}

/// The shells `completions` knows.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

/// A wait limit; `None`: wait forever.
#[derive(Clone, Copy, Debug)]
pub struct Timeout(pub Option<Duration>);

/// `30s`, `500ms`, `2m`, `1h`, a plain number of seconds; `0`, `none`, `inf`, `forever`: no
/// limit.
///
/// # Errors
///
/// A message for clap when `s` is not a duration.
pub fn parse_timeout(s: &str) -> Result<Timeout, String> {
    let t = s.trim();
    if matches!(t, "0" | "none" | "inf" | "forever") {
        return Ok(Timeout(None));
    }
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 30s, 500ms, 2m, or none)"))?;
    // A huge value means "effectively forever"; NaN and negatives are refused.
    shmbridge::duration_from_secs(v * mult)
        .map(Timeout)
        .map_err(|e| format!("{s:?}: {}", e.detail()))
}

/// `self`, `any`, or user ids separated by commas.
///
/// # Errors
///
/// A message for anything else.
pub fn parse_owner(s: &str) -> Result<shmbridge::OwnerPolicy, String> {
    shmbridge::OwnerPolicy::parse(s).map_err(|e| e.detail().to_owned())
}

/// `4096`, `64K`, `16M`, `1G`, `1.5k` (binary units).
///
/// # Errors
///
/// A message for clap when `s` is not a size, or is zero.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit (use K, M, G)")),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 64M)"))?;
    #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
    let bytes = v * mult as f64;
    #[allow(clippy::cast_precision_loss)]
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    #[allow(clippy::cast_sign_loss)]
    let bytes = bytes as u64;
    if bytes == 0 {
        return Err("the size must be greater than 0".into());
    }
    Ok(bytes)
}

/// Octal permission bits like `600` or `0o644`.
///
/// # Errors
///
/// A message for clap when `s` is not an octal mode of at most 0o777.
pub fn parse_permissions(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not octal permission bits like 600 or 644"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn parsers() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("12x").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(
            parse_timeout("500ms").unwrap().0,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_timeout("2m").unwrap().0,
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_timeout("3").unwrap().0, Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("none").unwrap().0, None);
        assert!(parse_timeout("-1s").is_err());
        // Huge means "effectively forever"; NaN is refused.
        assert_eq!(parse_timeout("1e300h").unwrap().0, None);
        assert_eq!(
            parse_timeout("1e19").unwrap().0,
            Some(Duration::from_secs(10_000_000_000_000_000_000))
        );
        assert!(parse_timeout("nan").is_err());
        assert_eq!(parse_permissions("644").unwrap(), 0o644);
        assert!(parse_permissions("999").is_err());
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    /// A short flag means one thing in every subcommand.
    #[test]
    fn short_flags_mean_the_same_everywhere() {
        let mut seen: Vec<(char, String)> = Vec::new();
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                if let Some(c) = arg.get_short() {
                    let long = arg.get_long().unwrap_or_default().to_owned();
                    match seen.iter().find(|(s, _)| *s == c) {
                        Some((_, l)) => assert_eq!(l, &long, "-{c} in {}", sub.get_name()),
                        None => seen.push((c, long)),
                    }
                }
            }
        }
        assert!(seen.iter().any(|(c, l)| *c == 'n' && l == "name"));
    }
}
