//! The EFI system partition, changed without mounting it (lms-updater is
//! not root): FAT through the `fatfs` crate on the partition device, one
//! short session per change, unmounted (which clears FAT's dirty flag) and
//! fsynced before the call returns. Files land under a temporary name and
//! are renamed into place in a later session, so a boot entry is never
//! half-written under a name systemd-boot reads (it ignores names starting
//! with `.`).
//!
//! Boot entries: `loader/entries/lms-<slot>[+LEFT[-DONE]].conf`, systemd-boot's
//! boot counting (../shared/OTA.md): no counter = good; `+0-N` = bad.

use std::io::{Read, Write};
use std::path::PathBuf;

const ENTRIES: &str = "loader/entries";

/// A slot's boot entry as its file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub file: String,
    pub slot: char,
    /// (tries left, tries done); `None`: blessed (no counter).
    pub counter: Option<(u32, u32)>,
}

impl Entry {
    pub fn parse(file: &str) -> Option<Entry> {
        let stem = file.strip_suffix(".conf")?;
        let rest = stem.strip_prefix("lms-")?;
        let mut chars = rest.chars();
        let slot = chars.next().filter(|c| *c == 'a' || *c == 'b')?;
        let tail: String = chars.collect();
        let counter = if tail.is_empty() {
            None
        } else {
            let c = tail.strip_prefix('+')?;
            let (left, done) = match c.split_once('-') {
                Some((l, d)) => (l.parse().ok()?, d.parse().ok()?),
                None => (c.parse().ok()?, 0),
            };
            Some((left, done))
        };
        Some(Entry { file: file.to_string(), slot, counter })
    }

    /// The file name with a counter of `left` tries and `done` done.
    pub fn name(slot: char, counter: Option<(u32, u32)>) -> String {
        match counter {
            None => format!("lms-{slot}.conf"),
            Some((left, 0)) => format!("lms-{slot}+{left}.conf"),
            Some((left, done)) => format!("lms-{slot}+{left}-{done}.conf"),
        }
    }
}

pub struct Esp {
    pub device: PathBuf,
}

/// Dates for the FAT directory entries fatfs writes. Without one, fatfs
/// writes 1980-00-00, which UEFI's FAT driver refuses when systemd-boot
/// renames the entry to count a try ("Invalid Parameter": boot counting
/// silently off). Found by the QEMU system update test.
#[derive(Debug)]
struct UtcClock;

impl fatfs::TimeProvider for UtcClock {
    fn get_current_date(&self) -> fatfs::Date {
        self.get_current_date_time().date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        let now = time::OffsetDateTime::now_utc();
        // FAT holds 1980..=2107; a clock outside that is wrong, not the date.
        let now = if (1980..=2107).contains(&now.year()) { now } else { time::macros::datetime!(2026-01-01 00:00 UTC) };
        fatfs::DateTime {
            date: fatfs::Date { year: now.year() as u16, month: u8::from(now.month()) as u16, day: now.day() as u16 },
            time: fatfs::Time {
                hour: now.hour() as u16,
                min: now.minute() as u16,
                sec: now.second() as u16,
                millis: now.millisecond(),
            },
        }
    }
}

static CLOCK: UtcClock = UtcClock;

type Dir<'a> = fatfs::Dir<'a, fscommon::BufStream<std::fs::File>>;

fn fat<E: std::fmt::Debug>(what: String) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e:?}")
}

impl Esp {
    /// Runs `f` on the ESP's root directory in one session: mounted, then
    /// unmounted and fsynced whatever `f` returned.
    fn session<T>(&self, f: impl FnOnce(&Dir) -> Result<T, String>) -> Result<T, String> {
        let d = self.device.display().to_string();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&self.device).map_err(fat(d.clone()))?;
        let options = fatfs::FsOptions::new().time_provider(&CLOCK);
        let fs = fatfs::FileSystem::new(fscommon::BufStream::new(file), options)
            .map_err(fat(format!("{d}: not a FAT file system")))?;
        let out = f(&fs.root_dir());
        fs.unmount().map_err(fat(d.clone()))?;
        std::fs::File::open(&self.device).and_then(|f| f.sync_all()).map_err(fat(d))?;
        out
    }

    /// The LMS boot entries on the ESP.
    pub fn entries(&self) -> Result<Vec<Entry>, String> {
        self.session(|root| {
            let dir = root.open_dir(ENTRIES).map_err(fat(ENTRIES.to_string()))?;
            let mut out = Vec::new();
            for e in dir.iter() {
                let e = e.map_err(fat(ENTRIES.to_string()))?;
                if let Some(entry) = Entry::parse(&e.file_name()) {
                    out.push(entry);
                }
            }
            out.sort_by(|a, b| a.file.cmp(&b.file));
            Ok(out)
        })
    }

    /// Removes every entry of `slot` (any counter): it can no longer be booted.
    pub fn remove_entries(&self, slot: char) -> Result<usize, String> {
        let gone: Vec<Entry> = self.entries()?.into_iter().filter(|e| e.slot == slot).collect();
        self.session(|root| {
            let dir = root.open_dir(ENTRIES).map_err(fat(ENTRIES.to_string()))?;
            for e in &gone {
                dir.remove(&e.file).map_err(fat(format!("{ENTRIES}/{}", e.file)))?;
            }
            Ok(gone.len())
        })
    }

    /// Renames `loader/entries/from` to `to` (replacing nothing: `to` must not exist).
    pub fn rename_entry(&self, from: &str, to: &str) -> Result<(), String> {
        self.session(|root| {
            let dir = root.open_dir(ENTRIES).map_err(fat(ENTRIES.to_string()))?;
            dir.rename(from, &dir, to).map_err(fat(format!("{ENTRIES}/{from} -> {to}")))
        })
    }

    /// Writes `dir/name` through a temporary name: write + unmount + fsync,
    /// read back and compare, then rename into place in a session of its own.
    pub fn write_file(&self, dir: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
        let tmp = format!(".{name}.tmp");
        self.session(|root| {
            // The image build makes `a/` and `b/`; the updater never makes
            // directories (fewer FAT structures written in the field).
            let d = root.open_dir(dir).map_err(fat(format!("{dir}/ (an ESP of the A/B layout has it)")))?;
            let _ = d.remove(&tmp);
            let mut f = d.create_file(&tmp).map_err(fat(format!("{dir}/{tmp}")))?;
            f.truncate().map_err(fat(format!("{dir}/{tmp}")))?;
            f.write_all(bytes).map_err(fat(format!("{dir}/{tmp}")))?;
            f.flush().map_err(fat(format!("{dir}/{tmp}")))
        })?;
        let back = self.read_file(&format!("{dir}/{tmp}"))?;
        if back != bytes {
            return Err(format!(
                "{dir}/{tmp}: read back {} bytes that differ from the {} written",
                back.len(),
                bytes.len()
            ));
        }
        self.session(|root| {
            let d = root.open_dir(dir).map_err(fat(dir.to_string()))?;
            let _ = d.remove(name);
            d.rename(&tmp, &d, name).map_err(fat(format!("{dir}/{tmp} -> {name}")))
        })
    }

    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        self.session(|root| {
            let mut f = root.open_file(path).map_err(fat(path.to_string()))?;
            let mut out = Vec::new();
            f.read_to_end(&mut out).map_err(fat(path.to_string()))?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What UEFI's FAT driver checks before a rename: a real date.
    #[test]
    fn files_written_carry_a_valid_date() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("esp.img");
        let ok = std::process::Command::new("mkfs.vfat").arg("-C").arg(&img).arg("8192").output().unwrap();
        assert!(ok.status.success());
        let esp = Esp { device: img.clone() };
        esp.session(|root| root.create_dir("loader").map(|_| ()).map_err(|e| format!("{e:?}"))).unwrap();
        esp.session(|root| root.create_dir("loader/entries").map(|_| ()).map_err(|e| format!("{e:?}"))).unwrap();
        esp.write_file("loader/entries", "lms-b+3.conf", b"title x\n").unwrap();
        esp.rename_entry("lms-b+3.conf", "lms-b+2-1.conf").unwrap();
        let year = esp
            .session(|root| {
                let dir = root.open_dir(ENTRIES).map_err(|e| format!("{e:?}"))?;
                let e = dir.iter().map(|e| e.unwrap()).find(|e| e.file_name() == "lms-b+2-1.conf").unwrap();
                let m = e.modified();
                assert!((1..=12).contains(&m.date.month) && (1..=31).contains(&m.date.day), "{m:?}");
                Ok(m.date.year)
            })
            .unwrap();
        assert!(year >= 2026, "{year}");
    }

    #[test]
    fn entry_names_round_trip() {
        for (name, slot, counter) in [
            ("lms-a.conf", 'a', None),
            ("lms-b+3.conf", 'b', Some((3, 0))),
            ("lms-b+2-1.conf", 'b', Some((2, 1))),
            ("lms-b+0-3.conf", 'b', Some((0, 3))),
        ] {
            let e = Entry::parse(name).unwrap();
            assert_eq!((e.slot, e.counter), (slot, counter), "{name}");
            assert_eq!(Entry::name(slot, counter), name);
        }
        for bad in ["lms-c.conf", "lms-a+x.conf", ".lms-b.conf.tmp", "lms-a.conf.tmp", "other.conf", "lms-ab.conf"] {
            assert!(Entry::parse(bad).is_none(), "{bad}");
        }
    }
}
