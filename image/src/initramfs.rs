//! A bootable kernel + initramfs from the definition's Debian packages: the
//! kernel image, the modules the appliance needs with their dependencies
//! (closure from `depmod`'s modules.dep), busybox and /init, packed as a
//! reproducible newc cpio (sorted entries, fixed owners, mtime from
//! SOURCE_DATE_EPOCH). This is the boot half of the image build (issue 4);
//! the disk image, partitions and services come next.

use crate::inputs::Resolved;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kernel modules the appliance loads (FACTS.md: these are `=m` in Debian's cloud kernel).
pub const MODULES: [&str; 9] =
    ["virtio_pci", "virtio_blk", "virtio_net", "overlay", "erofs", "squashfs", "vfat", "dm_verity", "br_netfilter"];

pub const INIT: &str = r#"#!/bin/busybox sh
# lms-init: the appliance's first process.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
loaded=0
for m in $(cat /etc/modules.order); do
    if insmod "/lib/modules/$m"; then loaded=$((loaded + 1)); else echo "lms-init: could not load $m"; fi
done
echo "lms-init: userspace up, $loaded modules loaded, kernel $(uname -r)"
if grep -q 'lms.smoke=1' /proc/cmdline; then
    poweroff -f
fi
ip link set lo up
# QEMU user networking's fixed addresses; DHCP (udhcpc) comes with the full image.
if ip link set eth0 up 2>/dev/null; then
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
fi
if [ -x /usr/bin/lms-node ]; then
    mkdir -p /data/lms
    # Supervised: restarted with a growing pause if it ever exits.
    (
        pause=1
        while true; do
            /usr/bin/lms-node serve --listen 0.0.0.0:8080 --admin-listen unix:/run/lms-admin.sock \
                --data-dir /data/lms --modules /opt/lms/modules --credentials /etc/lms/htpasswd
            echo "lms-init: lms-node exited ($?); restarting in ${pause}s"
            sleep "$pause"
            [ "$pause" -lt 30 ] && pause=$((pause * 2))
        done
    ) &
    echo "lms-init: lms-node started"
fi
exec sh
"#;

/// What the initramfs carries besides busybox and the kernel modules: the
/// node binary (static, musl), a module directory and credentials.
#[derive(Debug, Default)]
pub struct Payload {
    pub lms_node: Option<PathBuf>,
    pub modules: Option<PathBuf>,
    pub credentials: Option<PathBuf>,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim())) }
}

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

/// Writes `out/vmlinuz` and `out/initrd.img`; returns the kernel version and
/// the modules in load order.
pub fn build(inputs: &[Resolved], payload: &Payload, out: &Path) -> Result<(String, Vec<String>), String> {
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
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    if let Some(bin) = &payload.lms_node {
        files.insert("usr".into(), (0o040755, vec![]));
        files.insert("usr/bin".into(), (0o040755, vec![]));
        files.insert("usr/bin/lms-node".into(), (0o100755, read(bin)?));
    }
    if let Some(dir) = &payload.modules {
        files.insert("opt".into(), (0o040755, vec![]));
        files.insert("opt/lms".into(), (0o040755, vec![]));
        files.insert("opt/lms/modules".into(), (0o040755, vec![]));
        for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let name = e.file_name().to_string_lossy().into_owned();
            files.insert(format!("opt/lms/modules/{name}"), (0o100644, read(&e.path())?));
        }
    }
    if let Some(c) = &payload.credentials {
        files.insert("etc/lms".into(), (0o040755, vec![]));
        files.insert("etc/lms/htpasswd".into(), (0o100600, read(c)?));
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
