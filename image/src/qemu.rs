//! Booting an image under QEMU: TCG unless told otherwise (KVM hangs on
//! these machines, FACTS.md), the disk on virtio, user networking with the
//! node's port forwarded to a free port on 127.0.0.1. The image itself is
//! never written: writes go to a snapshot, or to a qcow2 overlay that
//! persists between runs.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

pub struct Vm {
    pub dir: PathBuf,
    /// Full UEFI boot from the disk (firmware, systemd-boot); else direct kernel boot.
    pub uefi: bool,
    pub kvm: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Host port forwarded to the guest's 8080.
    pub port: u16,
    /// Host port forwarded to the guest's 8081 (the content listener:
    /// package files on an origin of their own), when one is wanted.
    pub content_port: Option<u16>,
    /// Writable qcow2 overlay over disk.img (created when missing); `None`: a throwaway snapshot.
    pub overlay: Option<PathBuf>,
    /// Boot this raw disk (written to, like hardware) instead of disk.img; see `lms-image flash`.
    pub disk: Option<PathBuf>,
    /// Serial console to this file; `None`: stdio.
    pub console: Option<PathBuf>,
    /// QEMU monitor on this unix socket (`system_powerdown` presses the power button).
    pub monitor: Option<PathBuf>,
    /// Scratch space (the UEFI variable store copy).
    pub scratch: PathBuf,
    pub cmdline: String,
    /// Guest reboots stay in this QEMU; false: a reboot ends it (-no-reboot).
    pub reboot: bool,
    /// A UEFI variable store that persists (made from the template when missing).
    pub uefi_vars: Option<PathBuf>,
    /// A second network card on a user network of its own (netdev `uplink`, 10.0.3.0/24).
    pub uplink: bool,
    /// The first network reaches nothing outside the guest (forwarded ports still work).
    pub offline: bool,
    /// A second disk, read-only (a USB stick).
    pub stick: Option<PathBuf>,
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn file_arg(p: &Path) -> String {
    // QEMU's -drive splits on commas; our paths have none, refuse rather than misparse.
    p.display().to_string()
}

impl Vm {
    pub fn command(&self) -> Result<Command, String> {
        let disk = self.dir.join("disk.img");
        if !disk.exists() {
            return Err(format!("{}: no disk.img (run lms-image build first)", self.dir.display()));
        }
        for p in [&disk, &self.scratch] {
            if p.display().to_string().contains(',') {
                return Err(format!("{}: QEMU cannot take a path with a comma", p.display()));
            }
        }
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-accel", if self.kvm { "kvm" } else { "tcg" }])
            .args(["-m", &self.memory_mib.to_string(), "-smp", &self.cpus.to_string()])
            .args(["-nographic", "-nodefaults"]);
        if !self.reboot {
            c.arg("-no-reboot");
        }
        match &self.console {
            Some(f) => c.arg("-serial").arg(format!("file:{}", f.display())),
            None => c.args(["-serial", "stdio"]),
        };
        if let Some(m) = &self.monitor {
            c.arg("-monitor").arg(format!("unix:{},server,nowait", m.display()));
        }
        let drive = match (&self.disk, &self.overlay) {
            (Some(raw), _) => format!("if=virtio,format=raw,file={}", file_arg(raw)),
            (None, overlay) => match overlay {
                Some(o) => {
                    if !o.exists() {
                        let st = Command::new("qemu-img")
                            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
                            .arg(std::fs::canonicalize(&disk).map_err(|e| e.to_string())?)
                            .arg(o)
                            .status()
                            .map_err(|e| format!("qemu-img: {e}"))?;
                        if !st.success() {
                            return Err(format!("qemu-img could not create {}", o.display()));
                        }
                    }
                    format!("if=virtio,format=qcow2,file={}", file_arg(o))
                }
                None => format!("if=virtio,format=raw,snapshot=on,file={}", file_arg(&disk)),
            },
        };
        c.arg("-drive").arg(drive);
        if let Some(stick) = &self.stick {
            if stick.display().to_string().contains(',') {
                return Err(format!("{}: QEMU cannot take a path with a comma", stick.display()));
            }
            c.arg("-drive").arg(format!("if=virtio,format=raw,readonly=on,file={}", file_arg(stick)));
        }
        let mut lan = format!("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:8080", self.port);
        if let Some(c) = self.content_port {
            lan.push_str(&format!(",hostfwd=tcp:127.0.0.1:{c}-:8081"));
        }
        if self.offline {
            lan.push_str(",restrict=on");
        }
        c.args(["-netdev", &lan, "-device", "virtio-net-pci,netdev=n0"]);
        if self.uplink {
            c.args(["-netdev", "user,id=uplink,net=10.0.3.0/24", "-device", "virtio-net-pci,netdev=uplink"]);
        }
        if self.uefi {
            let vars = self.uefi_vars.clone().unwrap_or_else(|| self.scratch.join("OVMF_VARS.fd"));
            std::fs::create_dir_all(&self.scratch).map_err(|e| e.to_string())?;
            if self.uefi_vars.is_none() || !vars.exists() {
                std::fs::copy(OVMF_VARS, &vars).map_err(|e| format!("{OVMF_VARS}: {e} (apt-get install ovmf)"))?;
            }
            c.arg("-drive")
                .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", file_arg(&vars)));
        } else {
            c.arg("-kernel")
                .arg(self.dir.join("boot/vmlinuz"))
                .arg("-initrd")
                .arg(self.dir.join("boot/initrd.img"))
                .arg("-append")
                .arg(&self.cmdline);
        }
        // QEMU dies with us (tests and Ctrl-C never leave a VM behind).
        // SAFETY: the closure runs between fork and exec and only calls
        // prctl, which is async-signal-safe; it touches no memory of ours.
        unsafe {
            use std::os::unix::process::CommandExt;
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Ok(c)
    }
}

/// GET `path` on 127.0.0.1:`port`; the status code, if anything answered.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: lms\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(vm: &Vm) -> Vec<String> {
        vm.command().unwrap().get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    /// The learners' LAN with its forwarded ports; an uplink of its own and a
    /// read-only stick only when asked for; `offline` keeps the LAN inside.
    #[test]
    fn networks_and_a_stick() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("disk.img"), b"").unwrap();
        let mut vm = Vm {
            dir: d.path().to_path_buf(),
            uefi: false,
            kvm: false,
            memory_mib: 1024,
            cpus: 2,
            port: 18080,
            content_port: None,
            overlay: None,
            disk: None,
            console: None,
            monitor: None,
            scratch: d.path().to_path_buf(),
            cmdline: "console=ttyS0".into(),
            reboot: false,
            uefi_vars: None,
            uplink: false,
            offline: false,
            stick: None,
        };
        let plain = args(&vm).join(" ");
        assert!(plain.contains("-netdev user,id=n0,hostfwd=tcp:127.0.0.1:18080-:8080 "), "{plain}");
        assert!(!plain.contains("uplink") && !plain.contains("restrict") && !plain.contains("readonly=on"), "{plain}");
        vm.uplink = true;
        vm.offline = true;
        vm.stick = Some(d.path().join("stick.img"));
        let all = args(&vm).join(" ");
        assert!(all.contains("hostfwd=tcp:127.0.0.1:18080-:8080,restrict=on "), "{all}");
        assert!(all.contains("-netdev user,id=uplink,net=10.0.3.0/24 -device virtio-net-pci,netdev=uplink"), "{all}");
        assert!(
            all.contains(&format!("if=virtio,format=raw,readonly=on,file={}/stick.img", d.path().display())),
            "{all}"
        );
    }
}
