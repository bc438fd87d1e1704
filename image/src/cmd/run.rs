//! `lms-image run DIR`: boot the image under QEMU and say where the LMS answers.

use crate::qemu::{Vm, free_port, http_status};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    dir: PathBuf,
    /// Direct kernel boot (boot/vmlinuz + boot/initrd.img) instead of UEFI
    /// firmware + systemd-boot from the disk: same image, ~12 s faster under TCG.
    #[arg(long)]
    direct: bool,
    /// Use KVM (hangs on some machines; TCG is the default).
    #[arg(long)]
    kvm: bool,
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Host port for the node's 8080 (default: a free one on 127.0.0.1).
    #[arg(long)]
    port: Option<u16>,
    /// Host port for the node's content listener, 8081 (package files that
    /// cmi5 and SCORM launches open); default: not forwarded.
    #[arg(long)]
    content_port: Option<u16>,
    /// Keep the VM's writes in this qcow2 overlay (made when missing) so the data
    /// partition survives between runs; default: writes are thrown away.
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// QEMU monitor on this unix socket (`system_powerdown` = the power button).
    #[arg(long)]
    monitor: Option<PathBuf>,
    /// Boot this raw disk file read-write (one made with `lms-image flash`)
    /// instead of the image's disk.img; the kernel and command line still come from DIR.
    #[arg(long, conflicts_with = "overlay")]
    disk: Option<PathBuf>,
    /// Let the guest reboot inside the same QEMU (a system update reboots
    /// into its new slot); default: a reboot ends QEMU.
    #[arg(long)]
    reboot: bool,
    /// The UEFI variable store (made from OVMF's template when missing), so
    /// it persists across QEMU runs like a machine's NVRAM; default: a fresh copy.
    #[arg(long, conflicts_with = "direct")]
    uefi_vars: Option<PathBuf>,
    /// Serial console to this file instead of the terminal.
    #[arg(long)]
    console: Option<PathBuf>,
    /// A second network card, the node's uplink (QEMU netdev `uplink`, its
    /// own user network 10.0.3.0/24, the host at 10.0.3.2), apart from the
    /// learners' LAN with the forwarded ports: `set_link uplink off` on the
    /// monitor cuts the node off its hub while learners still reach it.
    #[arg(long)]
    uplink: bool,
    /// The learners' LAN reaches no further than the node: the forwarded
    /// ports work, the guest reaches nothing outside (QEMU `restrict=on`).
    #[arg(long)]
    offline: bool,
    /// A second disk, read-only, as a USB stick is plugged in (a raw file,
    /// such as one holding an update repository).
    #[arg(long)]
    stick: Option<PathBuf>,
    /// Extra kernel command-line words (direct boot only).
    #[arg(long, requires = "direct")]
    append: Option<String>,
    /// Machine-readable events (listening, ready, exited) on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (m, _) = crate::manifest::Manifest::read(&a.dir).map_err(anyhow::Error::msg)?;
    let port = match a.port {
        Some(p) => p,
        None => free_port()?,
    };
    let scratch = tempfile::tempdir()?;
    let mut cmdline = m.cmdline.clone();
    if let Some(x) = &a.append {
        cmdline = format!("{cmdline} {x}");
    }
    let vm = Vm {
        dir: a.dir.clone(),
        uefi: !a.direct,
        kvm: a.kvm,
        memory_mib: a.memory,
        cpus: a.cpus,
        port,
        content_port: a.content_port,
        overlay: a.overlay.clone(),
        disk: a.disk.clone(),
        console: a.console.clone(),
        monitor: a.monitor.clone(),
        scratch: scratch.path().to_path_buf(),
        cmdline,
        reboot: a.reboot,
        uefi_vars: a.uefi_vars.clone(),
        uplink: a.uplink,
        offline: a.offline,
        stick: a.stick.clone(),
    };
    let mut cmd = vm.command().map_err(anyhow::Error::msg)?;
    if a.console.is_some() || a.json {
        cmd.stdin(std::process::Stdio::null());
    }
    if a.json {
        cmd.stdout(std::process::Stdio::null());
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting qemu-system-x86_64: {e} (apt-get install qemu-system-x86)"))?;
    let url = format!("http://127.0.0.1:{port}/");
    let boot = if a.direct { "direct kernel boot" } else { "UEFI" };
    if a.json {
        println!(
            "{}",
            serde_json::json!({"event": "listening", "url": url, "port": port, "qemu_pid": child.id(), "boot": boot})
        );
    } else {
        eprintln!(
            "lms-image: booting {} ({boot}, {}); the LMS will answer at {url} (readiness: {url}readyz)",
            a.dir.display(),
            if a.kvm { "KVM" } else { "TCG" }
        );
    }
    // Report readiness while QEMU runs: `ready` each time /readyz turns 200,
    // `not_ready` when it stops answering 200 (a reboot).
    let mut ready = false;
    loop {
        if let Some(status) = child.try_wait()? {
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "exited", "status": status.code(), "seconds": start.elapsed().as_secs_f64()})
                );
            }
            anyhow::ensure!(status.success(), "QEMU exited with {status}");
            return Ok(());
        }
        let up = http_status(port, "/readyz") == Some(200);
        if up && !ready {
            let s = start.elapsed().as_secs_f64();
            if a.json {
                println!("{}", serde_json::json!({"event": "ready", "url": url, "seconds": s}));
            } else {
                eprintln!("lms-image: the LMS answers at {url} ({s:.1} s from QEMU start to /readyz 200)");
            }
        } else if !up && ready && a.json {
            println!("{}", serde_json::json!({"event": "not_ready", "seconds": start.elapsed().as_secs_f64()}));
        }
        ready = up;
        std::thread::sleep(Duration::from_millis(if ready { 1000 } else { 200 }));
    }
}
