//! How much room the segment directory (`/dev/shm`) has, how it is mounted, and whether this
//! looks like a container whose `/dev/shm` is small (Docker gives a container 64 MiB unless
//! told otherwise), with the advice that fixes it.
//!
//! `shmbridge doctor` prints it; transfers can check [`ShmSpace::available`] before they
//! create a segment.
//!
//! ```
//! let space = shmbridge::space::shm_space()?;
//! assert!(space.total >= space.free && space.free >= space.available);
//! # Ok::<(), shmbridge::Error>(())
//! ```

use std::path::{Path, PathBuf};

use crate::{sys, Error, Result};

/// The size of `/dev/shm` Docker and Podman give a container unless run with `--shm-size`.
pub const DOCKER_DEFAULT_SHM: u64 = 64 << 20;

/// How a file system is mounted (one line of `/proc/self/mountinfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The file system type (`tmpfs` for a normal `/dev/shm`).
    pub fs_type: String,
    /// The mount source (`tmpfs`, `shm`, a device).
    pub source: String,
    /// The per-mount options (`rw`, `nosuid`, `nodev`, `noexec`, `relatime`, ...).
    pub options: Vec<String>,
    /// The file system's own options (`size=65536k`, `nr_inodes=...`, `mode=1777`, ...).
    pub super_options: Vec<String>,
}

impl Mount {
    /// Whether the mount is read-only.
    #[must_use]
    pub fn read_only(&self) -> bool {
        self.options
            .iter()
            .chain(&self.super_options)
            .any(|o| o == "ro")
    }
}

/// The container runtime this process seems to run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Docker (or anything that leaves `/.dockerenv`).
    Docker,
    /// Podman (`/run/.containerenv`, or `container=podman`).
    Podman,
    /// A Kubernetes pod.
    Kubernetes,
    /// LXC / LXD.
    Lxc,
    /// Some other container (systemd-nspawn, containerd, an overlay root).
    Other,
}

impl Runtime {
    /// Its name, as a user would write it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
            Self::Kubernetes => "Kubernetes",
            Self::Lxc => "LXC",
            Self::Other => "container",
        }
    }
}

/// Why this looks like a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The runtime, as far as can be told.
    pub runtime: Runtime,
    /// What gave it away (`/.dockerenv exists`, ...).
    pub evidence: String,
}

/// What a container check looks at, gathered by [`ContainerProbe::gather`] (or written by
/// hand in a test).
#[derive(Clone, Debug, Default)]
pub struct ContainerProbe {
    /// Whether `/.dockerenv` exists.
    pub dockerenv: bool,
    /// Whether `/run/.containerenv` exists.
    pub containerenv: bool,
    /// The `container` environment variable (podman, systemd-nspawn, LXC set it).
    pub container_env: Option<String>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set.
    pub kubernetes_env: bool,
    /// `/proc/1/cgroup`.
    pub init_cgroup: String,
    /// The file system type of `/`.
    pub root_fs_type: Option<String>,
}

impl ContainerProbe {
    /// Look at this process's surroundings.
    #[must_use]
    pub fn gather() -> Self {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self {
            dockerenv: Path::new("/.dockerenv").exists(),
            containerenv: Path::new("/run/.containerenv").exists(),
            container_env: std::env::var("container").ok().filter(|v| !v.is_empty()),
            kubernetes_env: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            init_cgroup: std::fs::read_to_string("/proc/1/cgroup").unwrap_or_default(),
            root_fs_type: mount_of(&mountinfo, Path::new("/")).map(|m| m.fs_type),
        }
    }

    /// Whether, and under what, this looks like a container. Kubernetes first (its pods run
    /// on Docker or containerd too, and the advice differs), then the runtimes' own markers,
    /// then `/proc/1/cgroup`, then an overlay root.
    #[must_use]
    pub fn container(&self) -> Option<Container> {
        let found = |runtime, evidence: &str| {
            Some(Container {
                runtime,
                evidence: evidence.to_owned(),
            })
        };
        let cg = &self.init_cgroup;
        if self.kubernetes_env || cg.contains("kubepods") {
            return found(
                Runtime::Kubernetes,
                if self.kubernetes_env {
                    "KUBERNETES_SERVICE_HOST is set"
                } else {
                    "/proc/1/cgroup names kubepods"
                },
            );
        }
        if self.containerenv || self.container_env.as_deref() == Some("podman") {
            return found(Runtime::Podman, "/run/.containerenv exists");
        }
        if self.dockerenv {
            return found(Runtime::Docker, "/.dockerenv exists");
        }
        if cg.contains("docker") {
            return found(Runtime::Docker, "/proc/1/cgroup names docker");
        }
        if cg.contains("libpod") {
            return found(Runtime::Podman, "/proc/1/cgroup names libpod");
        }
        if cg.contains("lxc") || self.container_env.as_deref() == Some("lxc") {
            return found(Runtime::Lxc, "LXC (container=lxc or /proc/1/cgroup)");
        }
        if let Some(c) = &self.container_env {
            return Some(Container {
                runtime: Runtime::Other,
                evidence: format!("container={c}"),
            });
        }
        if cg.contains("containerd") {
            return found(Runtime::Other, "/proc/1/cgroup names containerd");
        }
        if self.root_fs_type.as_deref() == Some("overlay") {
            return found(Runtime::Other, "the root file system is an overlay");
        }
        None
    }
}

/// The room in a segment directory and what kind of place it is in.
#[derive(Clone, Debug)]
pub struct ShmSpace {
    /// The directory looked at (`/dev/shm`).
    pub dir: PathBuf,
    /// Size of the file system, in bytes.
    pub total: u64,
    /// Free bytes.
    pub free: u64,
    /// Free bytes an unprivileged process may use (what a new segment can get).
    pub available: u64,
    /// Inodes in all (`0`: the file system does not limit them; tmpfs with `nr_inodes=0`).
    pub inodes: u64,
    /// Free inodes (each segment takes one).
    pub inodes_free: u64,
    /// How it is mounted, when `/proc/self/mountinfo` says.
    pub mount: Option<Mount>,
    /// Whether this looks like a container.
    pub container: Option<Container>,
}

/// `n` bytes for a person: `64 MiB`, `23.5 GiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || (v - v.round()).abs() < 0.05 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl ShmSpace {
    /// Whether the file system is no bigger than Docker's default (64 MiB): too small for most
    /// one-shot transfers.
    #[must_use]
    pub fn is_small(&self) -> bool {
        self.total <= DOCKER_DEFAULT_SHM
    }

    /// Whether this looks like a container with a small `/dev/shm`.
    #[must_use]
    pub fn small_container_shm(&self) -> bool {
        self.container.is_some() && self.is_small()
    }

    /// What to do about the problems found, one piece of advice per entry (empty: nothing to
    /// fix). Each names the exact flag or command.
    #[must_use]
    pub fn advice(&self) -> Vec<String> {
        let mut out = Vec::new();
        let dir = self.dir.display();
        if let Some(m) = &self.mount {
            if m.fs_type != "tmpfs" {
                out.push(format!(
                    "{dir} is {} and not tmpfs: segments may be backed by a disk, or not be \
                     shared memory at all",
                    m.fs_type
                ));
            }
            if m.read_only() {
                out.push(format!(
                    "{dir} is mounted read-only: no segment can be created"
                ));
            }
        }
        if self.is_small() {
            let size = human(self.total);
            let what = if self.total == DOCKER_DEFAULT_SHM {
                format!("{size}, Docker's default")
            } else {
                size
            };
            let why = "a one-shot send needs room for the whole file; `send --stream` needs \
                       only its ring (--segment-size, 16 MiB by default)";
            match self.container.as_ref().map(|c| c.runtime) {
                Some(Runtime::Kubernetes) => out.push(format!(
                    "{dir} is small ({what}) in a Kubernetes pod: mount a memory-backed \
                     emptyDir there (volumes: - name: dshm, emptyDir: {{medium: Memory, \
                     sizeLimit: 1Gi}}; volumeMounts: - name: dshm, mountPath: /dev/shm); {why}"
                )),
                Some(Runtime::Podman) => out.push(format!(
                    "{dir} is small ({what}): run the container with `podman run \
                     --shm-size=1g ...`, or with `--ipc=host` to use the host's /dev/shm \
                     (which also shares segments with processes outside the container); {why}"
                )),
                Some(Runtime::Lxc) => out.push(format!(
                    "{dir} is small ({what}): give the container a bigger tmpfs at /dev/shm \
                     (e.g. `lxc.mount.entry = tmpfs dev/shm tmpfs rw,nosuid,nodev,size=1G \
                     0 0`); {why}"
                )),
                Some(Runtime::Docker | Runtime::Other) => out.push(format!(
                    "{dir} is small ({what}): run the container with `docker run \
                     --shm-size=1g ...` (Compose: `shm_size: 1gb`), or with `--ipc=host` \
                     (Compose: `ipc: host`) to use the host's /dev/shm, which also shares \
                     segments with processes outside the container; {why}"
                )),
                None => out.push(format!(
                    "{dir} is small ({what}): as root, `mount -o remount,size=1G {dir}` \
                     (and size=1G in its /etc/fstab line to keep it); {why}"
                )),
            }
        }
        if self.total > 0 && self.available < self.total / 10 {
            out.push(format!(
                "{dir} is nearly full ({} of {} available): `shmbridge ls` shows what is \
                 there, `shmbridge reap` removes what dead senders left",
                human(self.available),
                human(self.total)
            ));
        }
        if self.inodes > 0 && self.inodes_free < self.inodes / 100 + 1 {
            out.push(format!(
                "{dir} has {} free inodes left (each segment takes one): remove segments, or \
                 remount with a larger nr_inodes",
                self.inodes_free
            ));
        }
        out
    }
}

/// Undo mountinfo's octal escapes (`\040` is a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u16, |acc, c| acc * 8 + u16::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`.
fn parse_mount_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let mount_point = *left.get(4)?;
    let options = *left.get(5)?;
    let fs_type = right.next()?;
    let source = right.next().unwrap_or("");
    let super_options = right.next().unwrap_or("");
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Some(Mount {
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type: unescape(fs_type),
        source: unescape(source),
        options: split(options),
        super_options: split(super_options),
    })
}

/// The mount that holds `path` according to the text of a `/proc/PID/mountinfo`: the one
/// with the longest mount point that contains it, the later one when two are stacked on the
/// same point (the later mount hides the earlier).
#[must_use]
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for m in mountinfo.lines().filter_map(parse_mount_line) {
        if !path.starts_with(&m.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| m.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if longer {
            best = Some(m);
        }
    }
    best
}

/// The room in `dir` (any directory; [`shm_space`] for the segment directory).
///
/// # Errors
///
/// When `statvfs(2)` fails on `dir` (it does not exist, ...); the error names the path.
pub fn space_of(dir: &Path) -> Result<ShmSpace> {
    let st = sys::statvfs(dir).map_err(|e| {
        Error::from_io(
            &e,
            format!("cannot look at the file system of {}", dir.display()),
        )
        .with_path(dir)
    })?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    Ok(ShmSpace {
        dir: dir.to_owned(),
        total: st.blocks.saturating_mul(st.fragment_size),
        free: st.blocks_free.saturating_mul(st.fragment_size),
        available: st.blocks_available.saturating_mul(st.fragment_size),
        inodes: st.files,
        inodes_free: st.files_free,
        mount: mount_of(&mountinfo, &real),
        container: ContainerProbe::gather().container(),
    })
}

/// The room in the segment directory ([`crate::shm_dir`], `/dev/shm`).
///
/// # Errors
///
/// As [`space_of`].
pub fn shm_space() -> Result<ShmSpace> {
    space_of(crate::shm_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,mode=755
30 25 0:27 / /dev/shm rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs shm rw,size=65536k
31 27 0:28 / /mnt/with\\040space ro,relatime - tmpfs tmpfs ro,size=4k
";

    #[test]
    fn mountinfo_finds_the_mount_that_holds_a_path() {
        let m = mount_of(MOUNTINFO, Path::new("/dev/shm")).unwrap();
        assert_eq!(m.mount_point, Path::new("/dev/shm"));
        assert_eq!(m.source, "shm", "the later of two stacked mounts");
        assert_eq!(m.fs_type, "tmpfs");
        assert!(m.options.contains(&"noexec".to_owned()));
        assert_eq!(m.super_options, ["rw", "size=65536k"]);
        assert!(!m.read_only());
        let m = mount_of(MOUNTINFO, Path::new("/dev/null")).unwrap();
        assert_eq!(m.fs_type, "devtmpfs");
        let m = mount_of(MOUNTINFO, Path::new("/home/x")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
        let m = mount_of(MOUNTINFO, Path::new("/mnt/with space/f")).unwrap();
        assert!(m.read_only());
        assert_eq!(mount_of("garbage\n\n", Path::new("/")), None);
        assert!(parse_mount_line("1 2 3 - x").is_none());
        assert_eq!(unescape("a\\040b\\777\\é\\"), "a b\\777\\é\\");
    }

    #[test]
    fn containers_are_recognised() {
        let none = ContainerProbe::default();
        assert_eq!(none.container(), None);
        let docker = ContainerProbe {
            dockerenv: true,
            ..ContainerProbe::default()
        };
        assert_eq!(docker.container().unwrap().runtime, Runtime::Docker);
        let k8s = ContainerProbe {
            dockerenv: true,
            init_cgroup: "0::/kubepods/burstable/pod1/abc\n".into(),
            ..ContainerProbe::default()
        };
        assert_eq!(k8s.container().unwrap().runtime, Runtime::Kubernetes);
        let podman = ContainerProbe {
            container_env: Some("podman".into()),
            ..ContainerProbe::default()
        };
        assert_eq!(podman.container().unwrap().runtime, Runtime::Podman);
        let overlay = ContainerProbe {
            root_fs_type: Some("overlay".into()),
            ..ContainerProbe::default()
        };
        assert_eq!(overlay.container().unwrap().runtime, Runtime::Other);
    }

    fn space(total: u64, available: u64, container: Option<Runtime>) -> ShmSpace {
        ShmSpace {
            dir: PathBuf::from("/dev/shm"),
            total,
            free: available,
            available,
            inodes: 0,
            inodes_free: 0,
            mount: mount_of(MOUNTINFO, Path::new("/dev/shm")),
            container: container.map(|runtime| Container {
                runtime,
                evidence: "test".into(),
            }),
        }
    }

    #[test]
    fn advice_names_the_exact_flags() {
        let s = space(
            DOCKER_DEFAULT_SHM,
            DOCKER_DEFAULT_SHM,
            Some(Runtime::Docker),
        );
        assert!(s.small_container_shm());
        let a = s.advice().join("\n");
        assert!(a.contains("64 MiB, Docker's default"), "{a}");
        assert!(
            a.contains("--shm-size=1g") && a.contains("--ipc=host"),
            "{a}"
        );
        let a = space(32 << 20, 32 << 20, Some(Runtime::Kubernetes))
            .advice()
            .join("\n");
        assert!(a.contains("medium: Memory"), "{a}");
        let a = space(32 << 20, 32 << 20, None).advice().join("\n");
        assert!(a.contains("mount -o remount,size=1G /dev/shm"), "{a}");
        let big = space(24 << 30, 20 << 30, Some(Runtime::Docker));
        assert!(!big.small_container_shm());
        assert!(big.advice().is_empty(), "{:?}", big.advice());
        let full = space(24 << 30, 1 << 30, None).advice().join("\n");
        assert!(
            full.contains("nearly full (1 GiB of 24 GiB available)"),
            "{full}"
        );
    }

    #[test]
    fn the_real_segment_directory() {
        let s = shm_space().unwrap();
        assert!(s.total > 0 && s.total >= s.free && s.free >= s.available);
        assert_eq!(s.mount.unwrap().mount_point, Path::new("/dev/shm"));
        let e = space_of(Path::new("/no/such/dir")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert!(e.to_string().contains("/no/such/dir"), "{e}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(12), "12 B");
    }
}
