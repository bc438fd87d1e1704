//! The A/B system slots as the running node sees them: which partition is
//! which (GPT names, from sysfs), which slot is booted (`lms.slot=` on the
//! kernel command line), what the running system is (its os-release), and
//! and how large a slot partition is.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Devices {
    pub esp: PathBuf,
    pub a: PathBuf,
    pub b: PathBuf,
}

impl Devices {
    /// The partitions named `ESP`, `lms-system-a` and `lms-system-b`, from
    /// the kernel's view of the disks (`/sys/class/block/*/uevent`).
    pub fn discover() -> Result<Devices, String> {
        let mut found: [Option<PathBuf>; 3] = [None, None, None];
        let names = ["ESP", "lms-system-a", "lms-system-b"];
        for e in std::fs::read_dir("/sys/class/block").map_err(|e| format!("/sys/class/block: {e}"))?.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("uevent")) else { continue };
            let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::to_string);
            if let (Some(part), Some(dev)) = (field("PARTNAME="), field("DEVNAME="))
                && let Some(i) = names.iter().position(|n| *n == part)
            {
                found[i] = Some(Path::new("/dev").join(dev));
            }
        }
        let [Some(esp), Some(a), Some(b)] = found else {
            return Err("no GPT partitions named ESP, lms-system-a and lms-system-b (a disk of the A/B layout: \
                        lms-image flash --keep-data moves an older node to it)"
                .into());
        };
        Ok(Devices { esp, a, b })
    }

    pub fn slot(&self, slot: char) -> &Path {
        if slot == 'a' { &self.a } else { &self.b }
    }
}

pub fn other(slot: char) -> char {
    if slot == 'a' { 'b' } else { 'a' }
}

/// The booted slot from the kernel command line at `cmdline`.
pub fn booted(cmdline: &Path) -> Result<char, String> {
    let text = std::fs::read_to_string(cmdline).map_err(|e| format!("{}: {e}", cmdline.display()))?;
    match text.split_whitespace().find_map(|w| w.strip_prefix("lms.slot=")) {
        Some("a") => Ok('a'),
        Some("b") => Ok('b'),
        other => Err(format!("{}: lms.slot is {other:?}, not a or b", cmdline.display())),
    }
}

/// (IMAGE_ID, SYSTEM_VERSION) of the running system.
pub fn running(os_release: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(os_release).map_err(|e| format!("{}: {e}", os_release.display()))?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim_matches('"').to_string())
            .ok_or_else(|| format!("{}: no {k}", os_release.display()))
    };
    Ok((field("IMAGE_ID=")?, field("SYSTEM_VERSION=")?))
}

/// Bytes a partition (or the file standing in for one) holds.
pub fn size(dev: &Path) -> Result<u64, String> {
    std::fs::File::open(dev).and_then(|mut f| f.seek(SeekFrom::End(0))).map_err(|e| format!("{}: {e}", dev.display()))
}
