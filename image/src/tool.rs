//! Running the host tools the build drives (dpkg-deb, depmod, mkfs.*,
//! mtools, mksquashfs, sfdisk, strip, cargo): the error names the command and
//! carries its stderr.

use std::process::Command;

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| {
        format!("{:?}: {e} (is it installed? `cargo xtask setup` installs what the build needs)", cmd.get_program())
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}
