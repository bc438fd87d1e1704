//! A bootable kernel + initramfs from the definition's Debian packages: the
//! kernel image, the modules the appliance needs with their dependencies
//! (closure from `depmod`'s modules.dep), busybox, /init, and `dmsetup`
//! with its shared libraries (the `initramfs = true` packages; the closure
//! from the ELF files' DT_NEEDED, read with readelf), packed as a
//! reproducible newc cpio (sorted entries, fixed owners, mtime from
//! SOURCE_DATE_EPOCH). `lms-image build` puts both on the ESP; /init opens
//! the booted slot's system partition through dm-verity and finds the data
//! partition by its GPT name.

use crate::inputs::Resolved;
use crate::tool::run;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kernel modules the appliance loads (FACTS.md: these are `=m` in Debian's cloud kernel).
/// `button` + `evdev`: the power button reaches acpid, which powers off cleanly.
/// `efivarfs` + the FAT code pages: the updater reads the boot loader's
/// variables and writes boot entries on the ESP. `softdog`: the watchdog
/// lms-init arms (this kernel has no driver for QEMU's i6300esb, nor iTCO).
pub const MODULES: [&str; 15] = [
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "overlay",
    "erofs",
    "squashfs",
    "vfat",
    "dm_verity",
    "br_netfilter",
    "button",
    "evdev",
    "efivarfs",
    "nls_cp437",
    "nls_ascii",
    "softdog",
];

/// Programs the initramfs takes from the `initramfs` packages: (path in
/// the package, path in the initramfs).
pub const PROGRAMS: [(&str, &str); 2] = [("sbin/dmsetup", "bin/dmsetup"), ("sbin/fsck.fat", "bin/fsck.fat")];
/// Where shared libraries go in the initramfs (the dynamic loader's default path).
const LIBDIR: &str = "lib/x86_64-linux-gnu";

/// /init: brings up the partitions and the services (appliance/rootfs/init).
pub const INIT: &str = include_str!("../../appliance/rootfs/init");
/// busybox udhcpc's hook that applies a lease.
pub const UDHCPC_SCRIPT: &str = include_str!("../../appliance/rootfs/etc/udhcpc.script");
/// busybox acpid's action for the power button: a clean poweroff.
pub const POWER_BUTTON: &str = include_str!("../../appliance/rootfs/etc/acpi/PWRF/00000080");
fn find<'a>(inputs: &'a [Resolved], prefix: &str) -> Result<&'a Resolved, String> {
    inputs
        .iter()
        .find(|i| i.kind == "debian" && i.name.starts_with(prefix))
        .ok_or_else(|| format!("the definition has no Debian package named {prefix}*"))
}

/// Module name -> dependencies, both as paths relative to lib/modules/KVER.
fn modules_dep(tree: &Path) -> Result<BTreeMap<String, Vec<String>>, String> {
    let p = tree.join("modules.dep");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, deps)| (m.to_string(), deps.split_whitespace().map(str::to_string).collect()))
        .collect())
}

fn module_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).trim_end_matches(".ko").replace('-', "_")
}

/// The wanted modules and everything they depend on, dependencies first.
pub fn closure(dep: &BTreeMap<String, Vec<String>>, wanted: &[&str]) -> Result<Vec<String>, String> {
    let by_name: BTreeMap<String, &String> = dep.keys().map(|k| (module_name(k), k)).collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(m: &str, dep: &BTreeMap<String, Vec<String>>, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !seen.insert(m.to_string()) {
            return;
        }
        for d in dep.get(m).into_iter().flatten() {
            visit(d, dep, seen, order);
        }
        order.push(m.to_string());
    }
    for w in wanted {
        let path = by_name.get(&w.replace('-', "_")).ok_or_else(|| format!("kernel has no module {w}"))?;
        visit(path, dep, &mut seen, &mut order);
    }
    Ok(order)
}

/// newc cpio writer: deterministic headers, sorted by the caller.
struct Cpio<W: Write> {
    out: W,
    ino: u32,
    mtime: u32,
}

impl<W: Write> Cpio<W> {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.ino += 1;
        let name_z = format!("{name}\0");
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            self.mtime,
            data.len(),
            0,
            0,
            0,
            0,
            name_z.len(),
            0
        );
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name_z.as_bytes())?;
        self.pad(110 + name_z.len())?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }
    fn pad(&mut self, n: usize) -> std::io::Result<()> {
        self.out.write_all(&[0u8; 3][..(4 - n % 4) % 4])
    }
    fn finish(mut self) -> std::io::Result<W> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[])?;
        Ok(self.out)
    }
}

/// Resolves `path` inside the unpacked tree `root`, following symlinks
/// (absolute ones relative to `root`, never to the build machine).
fn in_tree(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut p = root.join(rel.trim_start_matches('/'));
    for _ in 0..16 {
        match std::fs::read_link(&p) {
            Ok(t) if t.is_absolute() => p = root.join(t.strip_prefix("/").unwrap()),
            Ok(t) => p = p.parent().unwrap().join(t),
            Err(_) => return if p.is_file() { Ok(p) } else { Err(format!("{rel}: not in the initramfs packages")) },
        }
    }
    Err(format!("{rel}: too many symlinks"))
}

/// (DT_NEEDED names, program interpreter) of an ELF file, via readelf.
fn elf_needs(file: &Path) -> Result<(Vec<String>, Option<String>), String> {
    let o = Command::new("readelf")
        .args(["-d", "-l", "-W"])
        .arg(file)
        .output()
        .map_err(|e| format!("readelf (binutils): {e}"))?;
    if !o.status.success() {
        return Err(format!("readelf {}: {}", file.display(), String::from_utf8_lossy(&o.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).and_then(|r| r.split(']').next()))
        .map(str::to_string)
        .collect();
    let interp = text
        .lines()
        .find_map(|l| l.split("Requesting program interpreter: ").nth(1))
        .map(|r| r.trim_end_matches(']').to_string());
    Ok((needed, interp))
}

/// The programs and every library they load (transitively), as
/// initramfs path -> bytes.
fn userspace(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let mut todo: Vec<(PathBuf, String)> = Vec::new();
    for (src, dest) in PROGRAMS {
        todo.push((in_tree(root, src)?, dest.to_string()));
    }
    while let Some((src, dest)) = todo.pop() {
        if files.contains_key(&dest) {
            continue;
        }
        let (needed, interp) = elf_needs(&src)?;
        for lib in needed {
            let found = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib"]
                .iter()
                .find_map(|d| in_tree(root, &format!("{d}/{lib}")).ok())
                .ok_or_else(|| format!("{dest} needs {lib}, which no initramfs package has"))?;
            todo.push((found, format!("{LIBDIR}/{lib}")));
        }
        if let Some(i) = interp {
            todo.push((in_tree(root, &i)?, i.trim_start_matches('/').to_string()));
        }
        files.insert(dest, std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?);
    }
    Ok(files)
}

/// Writes `out/vmlinuz` and `out/initrd.img`; returns the kernel version and
/// the modules in load order.
pub fn build(inputs: &[Resolved], out: &Path) -> Result<(String, Vec<String>), String> {
    let kernel = find(inputs, "linux-image-")?;
    let busybox = find(inputs, "busybox")?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (kroot, broot) = (work.path().join("kernel"), work.path().join("busybox"));
    for (deb, root) in [(kernel, &kroot), (busybox, &broot)] {
        let path = deb.path.as_ref().ok_or_else(|| format!("{} is absent", deb.name))?;
        run(Command::new("dpkg-deb").arg("-x").arg(path).arg(root))?;
    }
    let kver = std::fs::read_dir(kroot.join("lib/modules"))
        .map_err(|e| format!("{}: {e}", kernel.name))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| format!("{} has no lib/modules", kernel.name))?;
    run(Command::new("depmod").arg("-b").arg(&kroot).arg(&kver))?;
    let uroot = work.path().join("userspace");
    for deb in inputs.iter().filter(|i| i.kind == "debian" && i.initramfs) {
        let path = deb.path.as_ref().ok_or_else(|| format!("{} is absent", deb.name))?;
        run(Command::new("dpkg-deb").arg("-x").arg(path).arg(&uroot))?;
    }
    let programs = userspace(&uroot)?;
    let tree = kroot.join("lib/modules").join(&kver);
    let order = closure(&modules_dep(&tree)?, &MODULES)?;

    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let vmlinuz = kroot.join("boot").join(format!("vmlinuz-{kver}"));
    std::fs::copy(&vmlinuz, out.join("vmlinuz")).map_err(|e| format!("{}: {e}", vmlinuz.display()))?;

    let mtime = lms_bundle::build_time().unix_timestamp().clamp(0, u32::MAX as i64) as u32;
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    for d in ["bin", "dev", "proc", "sys", "etc", "lib", "lib/modules", "run", "tmp", "data"] {
        files.insert(d.to_string(), (0o040755, vec![]));
    }
    let bb = broot.join("bin/busybox");
    files.insert("bin/busybox".into(), (0o100755, std::fs::read(&bb).map_err(|e| format!("{}: {e}", bb.display()))?));
    files.insert("init".into(), (0o100755, INIT.as_bytes().to_vec()));
    for d in ["lib/x86_64-linux-gnu", "lib64"] {
        files.insert(d.into(), (0o040755, vec![]));
    }
    for (path, bytes) in programs {
        files.insert(path, (0o100755, bytes));
    }
    files.insert("etc/udhcpc.script".into(), (0o100755, UDHCPC_SCRIPT.as_bytes().to_vec()));
    files.insert("etc/resolv.conf".into(), (0o120777, b"/run/resolv.conf".to_vec()));
    // The power button (ACPI, or QEMU's system_powerdown) powers off cleanly:
    // busybox acpid runs /etc/acpi/PWRF/00000080 for it.
    for d in ["etc/acpi", "etc/acpi/PWRF"] {
        files.insert(d.into(), (0o040755, vec![]));
    }
    files.insert("etc/acpi/PWRF/00000080".into(), (0o100755, POWER_BUTTON.as_bytes().to_vec()));
    files.insert("etc/modules.order".into(), (0o100644, format!("{}\n", order.join("\n")).into_bytes()));
    for m in &order {
        let mut dir = String::from("lib/modules");
        for part in m.split('/').collect::<Vec<_>>().split_last().map(|(_, d)| d).unwrap_or(&[]) {
            dir = format!("{dir}/{part}");
            files.entry(dir.clone()).or_insert((0o040755, vec![]));
        }
        let bytes = std::fs::read(tree.join(m)).map_err(|e| format!("{m}: {e}"))?;
        files.insert(format!("lib/modules/{m}"), (0o100644, bytes));
    }
    let f = std::fs::File::create(out.join("initrd.img")).map_err(|e| e.to_string())?;
    let mut cpio = Cpio { out: std::io::BufWriter::new(f), ino: 0, mtime };
    for (name, (mode, data)) in &files {
        cpio.entry(name, *mode, data).map_err(|e| e.to_string())?;
    }
    cpio.finish().and_then(|mut w| w.flush()).map_err(|e| e.to_string())?;
    Ok((kver, order))
}

/// Paths of the outputs, for callers that print them.
pub fn outputs(out: &Path) -> [PathBuf; 2] {
    [out.join("vmlinuz"), out.join("initrd.img")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_puts_dependencies_first_once() {
        let dep: BTreeMap<String, Vec<String>> = [
            ("k/virtio_pci.ko", vec!["k/virtio.ko", "k/virtio_ring.ko"]),
            ("k/virtio_blk.ko", vec!["k/virtio.ko", "k/virtio_ring.ko"]),
            ("k/virtio.ko", vec![]),
            ("k/virtio_ring.ko", vec![]),
            ("k/dm-verity.ko", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
        .collect();
        let order = closure(&dep, &["virtio_pci", "virtio_blk", "dm_verity"]).unwrap();
        assert_eq!(order, ["k/virtio.ko", "k/virtio_ring.ko", "k/virtio_pci.ko", "k/virtio_blk.ko", "k/dm-verity.ko"]);
        assert!(closure(&dep, &["nope"]).unwrap_err().contains("nope"));
    }

    #[test]
    fn cpio_headers_are_newc_and_padded() {
        let mut c = Cpio { out: Vec::new(), ino: 0, mtime: 0 };
        c.entry("init", 0o100755, b"abc").unwrap();
        let out = c.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
