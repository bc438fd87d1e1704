//! Running as a service's own user: the appliance's init starts lms-node
//! and lms-updater as root (to raise limits and read root-only settings)
//! and they drop to `--run-as UID:GID` before they touch the network or the
//! data partition (issue 10, case 13). Busybox's setpriv cannot change
//! users, so the programs do it themselves, once, before any thread starts.

/// `UID:GID`, both numbers.
pub fn parse_run_as(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected UID:GID, e.g. 1001:1001"))?;
    let num = |v: &str, what: &str| v.parse::<u32>().map_err(|_| format!("{s:?}: {what} {v:?} is not a number"));
    Ok((num(u, "UID")?, num(g, "GID")?))
}

/// Drops every privilege to `uid`:`gid` (no supplementary groups, no new
/// privileges through setuid files), then checks that root cannot be had
/// back. Call it while the process has one thread.
pub fn drop_to(uid: u32, gid: u32) -> Result<(), String> {
    let os = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: plain system calls with no pointers but a null list of groups.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(os("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(os(&format!("setgid({gid})")));
        }
        if libc::setuid(uid) != 0 {
            return Err(os(&format!("setuid({uid})")));
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(os("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(format!("still able to become root after setuid({uid})"));
        }
        if libc::getuid() != uid || libc::geteuid() != uid || libc::getgid() != gid || libc::getegid() != gid {
            return Err(format!("not running as {uid}:{gid} after dropping privileges"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_as_values_are_checked() {
        assert_eq!(super::parse_run_as("1001:1002"), Ok((1001, 1002)));
        assert!(super::parse_run_as("lms").unwrap_err().contains("UID:GID"));
        assert!(super::parse_run_as("lms:1").unwrap_err().contains("UID"));
        assert!(super::parse_run_as("1:x").unwrap_err().contains("GID"));
    }
}
