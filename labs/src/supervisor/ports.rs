//! Loopback ports for the brokers' own listeners, and who holds a port that turns out taken.
//!
//! Brokers bind their listeners themselves, so the lab can only pick ports that are free *now*.
//! All of a lab's ports are picked while every probe socket is still open (no two picks can
//! collide), and each node's ports are checked again right before the node starts, so a port
//! taken in between fails with its number and, when /proc tells, the pid holding it.

use std::net::{SocketAddr, TcpListener};

use crate::error::{LabError, Result};

/// `count` distinct free loopback ports, and the probe sockets that hold them: keep those until
/// the lab's own proxies are bound, or the kernel may hand a proxy the port a broker will need.
pub(crate) fn reserve(count: usize) -> Result<(Vec<SocketAddr>, Vec<TcpListener>)> {
    let probes: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .map_err(LabError::io("picking free loopback ports"))?;
    let addrs = probes
        .iter()
        .map(|l| l.local_addr().map_err(LabError::io("reading a picked port")))
        .collect::<Result<_>>()?;
    Ok((addrs, probes))
}

/// Fails with `PortInUse` when `addr` cannot be bound right now.
pub(crate) fn ensure_free(addr: SocketAddr, what: &str) -> Result<()> {
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let holder = match holder_of(addr.port()) {
                Some((pid, name)) => format!(" (held by pid {pid}, {name})"),
                None => String::new(),
            };
            Err(LabError::PortInUse { port: addr.port(), what: what.to_string(), holder })
        }
        Err(e) => Err(LabError::Io { what: format!("checking that {what} port {addr} is free"), source: e }),
    }
}

/// The pid and command name of a process with a TCP socket bound to `port`, if /proc shows one
/// (it does not for other users' processes unless we are root).
pub(crate) fn holder_of(port: u16) -> Option<(i32, String)> {
    let inode = socket_inode(port)?;
    let needle = format!("socket:[{inode}]");
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == needle.as_str()) {
                return Some((pid, process_name(pid)));
            }
        }
    }
    None
}

/// The inode of the socket bound to `port` in /proc/net/tcp{,6}, preferring a listener.
fn socket_inode(port: u16) -> Option<u64> {
    let mut found = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let local_port = cols[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            let inode = cols[9].parse::<u64>().ok().filter(|&i| i != 0);
            if local_port == Some(port) {
                if let Some(inode) = inode {
                    if cols[3] == "0A" {
                        return Some(inode); // LISTEN
                    }
                    found.get_or_insert(inode);
                }
            }
        }
    }
    found
}

/// `comm` of a process (what `ps` shows), or "unknown process".
pub(crate) fn process_name(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown process".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named_with_its_holder() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let msg = ensure_free(addr, "kafka").unwrap_err().to_string();
        assert!(msg.contains(&format!("port {}", addr.port())), "{msg}");
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        drop(taken);
        ensure_free(addr, "kafka").unwrap();
    }

    #[test]
    fn allocated_ports_are_distinct() {
        let mut ports: Vec<u16> = reserve(12).unwrap().0.iter().map(|a| a.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 12);
    }
}
