//! `pub` and `sub`: a channel from the shell. `pub` makes one message of each line of its
//! standard input, or of each file it is given; `sub` writes the messages it takes to standard
//! output (one per line) or to files.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use shmbridge::channel::{ChannelOptions, ChannelReader, ChannelWriter, Policy};
use shmbridge::{Error, ErrorKind, FramedOptions, SegmentOptions, Wait};

use crate::args::{PubArgs, SubArgs};
use crate::report::{errln, Failure, Outcome};
use crate::{exit, Interrupt};

/// A failure; an interrupt is said as such (exit 130).
fn failed(e: Error, interrupt: &Interrupt) -> Failure {
    if e.kind() == ErrorKind::Aborted && interrupt.requested() {
        errln!("shmbridge: interrupted (Ctrl-C or SIGTERM): {e}");
        return Failure::Reported(exit::INTERRUPTED);
    }
    Failure::Core(e)
}

fn file_err(path: &Path, e: &std::io::Error, what: &str) -> Error {
    Error::from_io(e, format!("{what} {}", path.display())).with_path(path)
}

/// `shmbridge pub`.
pub fn publish(a: &PubArgs, quiet: bool, interrupt: &Interrupt) -> Outcome {
    let largest_file = a
        .files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| m.len())
                .map_err(|e| file_err(f, &e, "cannot read"))
        })
        .try_fold(0u64, |acc, len| len.map(|l| acc.max(l)))?;
    let opts = ChannelOptions {
        slots: a.slots,
        max_message: a.max_message.unwrap_or_else(|| largest_file.max(64 << 10)),
        readers: a.readers,
        policy: if a.overwrite {
            Policy::Overwrite
        } else {
            Policy::Block
        },
        history: a.history,
        checksum: a.checksum,
        framed: FramedOptions {
            segment: SegmentOptions {
                permissions: a.permissions,
                ..SegmentOptions::default()
            },
        },
    };
    let mut w = ChannelWriter::create(&a.name, &opts)?;
    let stop = interrupt.clone();
    let mut hook = move || {
        if stop.requested() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let mut wait = Wait::forever().idle(a.timeout.0).with_hook(&mut hook);
    if !quiet {
        errln!(
            "shmbridge: publishing to channel {:?} (read it with: shmbridge sub {})",
            a.name,
            a.name
        );
    }
    if a.wait_readers > 0 {
        w.wait_for_readers(a.wait_readers, &mut wait)
            .map_err(|e| failed(e, interrupt))?;
    }
    let mut sent = 0u64;
    if a.files.is_empty() {
        let stdin = std::io::stdin();
        let mut line = Vec::new();
        let mut input = stdin.lock();
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::from_io(&e, "reading standard input failed"))?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            w.send(&line, tag(sent), &mut wait)
                .map_err(|e| failed(e, interrupt))?;
            sent += 1;
        }
    } else {
        for f in &a.files {
            let data = std::fs::read(f).map_err(|e| file_err(f, &e, "cannot read"))?;
            w.send(&data, tag(sent), &mut wait)
                .map_err(|e| failed(e, interrupt))?;
            sent += 1;
        }
    }
    w.close();
    if !quiet {
        errln!(
            "shmbridge: published {sent} messages to {:?}, and closed it",
            a.name
        );
    }
    Ok(())
}

fn tag(n: u64) -> u32 {
    (n % (1 << 32)) as u32
}

/// `shmbridge sub`.
pub fn subscribe(a: &SubArgs, interrupt: &Interrupt) -> Outcome {
    let stop = interrupt.clone();
    let mut hook = move || {
        if stop.requested() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let mut wait = Wait::forever().idle(a.timeout.0).with_hook(&mut hook);
    let r = ChannelReader::open_with_owner(&a.name, &mut wait, &a.allow_owner)
        .map_err(|e| failed(e, interrupt))?;
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, &e, "cannot create"))?;
    }
    let stdout = std::io::stdout();
    let mut taken = 0u64;
    while a.count.is_none_or(|c| taken < c) {
        let m = match r.recv(&mut wait) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::WriterClosed => break,
            Err(e) => return Err(failed(e, interrupt)),
        };
        wait.progressed();
        let info = *m.info();
        if info.lost > 0 {
            errln!(
                "shmbridge: lost {} message(s) before message {}",
                info.lost,
                info.seq
            );
        }
        if let Some(dir) = &a.out_dir {
            let path: PathBuf = dir.join(format!("{:012}.msg", info.seq));
            std::fs::write(&path, &*m).map_err(|e| file_err(&path, &e, "cannot write"))?;
        } else {
            let mut out = stdout.lock();
            out.write_all(&m)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
        taken += 1;
    }
    Ok(())
}
