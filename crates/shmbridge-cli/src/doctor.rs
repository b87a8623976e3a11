//! `shmbridge doctor`: what the core's [`shmbridge::space`] finds about `/dev/shm`.

use indicatif::HumanBytes;
use serde_json::json;

use crate::report::{outln, Outcome};

/// `shmbridge doctor`.
pub fn doctor(json_out: bool) -> Outcome {
    let s = shmbridge::space::shm_space()?;
    let advice = s.advice();
    if json_out {
        let v = json!({
            "dir": s.dir.display().to_string(),
            "total": s.total,
            "free": s.free,
            "available": s.available,
            "inodes": s.inodes,
            "inodes_free": s.inodes_free,
            "mount": s.mount.as_ref().map(|m| json!({
                "mount_point": m.mount_point.display().to_string(),
                "fs_type": m.fs_type,
                "source": m.source,
                "options": m.options,
                "super_options": m.super_options,
            })),
            "container": s.container.as_ref().map(|c| json!({
                "runtime": c.runtime.name(),
                "evidence": c.evidence,
            })),
            "small": s.is_small(),
            "small_container_shm": s.small_container_shm(),
            "advice": advice,
        });
        outln!("{v}")?;
        return Ok(());
    }
    let dir = s.dir.display();
    outln!("directory:  {dir}")?;
    outln!(
        "size:       {} in all, {} free, {} available to unprivileged processes",
        HumanBytes(s.total),
        HumanBytes(s.free),
        HumanBytes(s.available)
    )?;
    if s.inodes == 0 {
        outln!("inodes:     not limited")?;
    } else {
        outln!("inodes:     {} free of {}", s.inodes_free, s.inodes)?;
    }
    match &s.mount {
        Some(m) => {
            outln!(
                "mount:      {} on {} type {}",
                m.source,
                m.mount_point.display(),
                m.fs_type
            )?;
            outln!(
                "options:    {} ({})",
                m.options.join(","),
                m.super_options.join(",")
            )?;
        }
        None => outln!("mount:      not found in /proc/self/mountinfo")?,
    }
    match &s.container {
        Some(c) => outln!("container:  {} ({})", c.runtime.name(), c.evidence)?,
        None => outln!("container:  none detected")?,
    }
    if advice.is_empty() {
        outln!("ok: {dir} has room for transfers")?;
    }
    for a in advice {
        outln!("advice:     {a}")?;
    }
    Ok(())
}
