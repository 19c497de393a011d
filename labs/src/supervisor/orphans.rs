//! Brokers left over from an earlier run (a lab killed with SIGKILL before it could stop them,
//! or a node the user reran by hand). Starting over them would fight for the data dir lock and
//! the ports, so the lab refuses and names the pid.
//!
//! A pid from a file is only trusted when that process is a clusterlab-broker that really uses
//! this data dir (it has `<data_dir>/.lock` open, or names the dir on its command line): pids are
//! reused, and the lab must never blame, or signal, a process that is not its broker.

use std::path::Path;

use crate::error::{LabError, Result};

/// Fails with `StaleBroker` if the node's pid file or its data dir's `.lock` names a live
/// clusterlab-broker on `data_dir`.
pub(crate) fn ensure_no_stale_broker(pid_file: &Path, data_dir: &Path) -> Result<()> {
    let lock = data_dir.join(".lock");
    for file in [pid_file, lock.as_path()] {
        let Some(pid) = read_pid(file) else { continue };
        if pid as u32 == std::process::id() {
            continue;
        }
        if is_broker_on(pid, data_dir) {
            return Err(LabError::StaleBroker { pid, data_dir: data_dir.to_path_buf() });
        }
    }
    Ok(())
}

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok().filter(|&p: &i32| p > 0)
}

/// A live clusterlab-broker whose data dir is `data_dir`.
fn is_broker_on(pid: i32, data_dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let mut args = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned());
    let is_broker = args
        .next()
        .is_some_and(|argv0| Path::new(&argv0).file_name().is_some_and(|n| n == "clusterlab-broker"));
    if !is_broker {
        return false;
    }
    let dir = data_dir.to_string_lossy();
    if args.any(|a| a.contains(dir.as_ref())) {
        return true;
    }
    let lock = std::fs::canonicalize(data_dir.join(".lock")).unwrap_or_else(|_| data_dir.join(".lock"));
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_that_is_not_a_broker_is_not_blamed() {
        let dir = std::env::temp_dir().join(format!("orphans-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // pid 1 is alive but is not a clusterlab-broker.
        std::fs::write(dir.join("broker.pid"), "1\n").unwrap();
        std::fs::write(dir.join(".lock"), "1\n").unwrap();
        ensure_no_stale_broker(&dir.join("broker.pid"), &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
