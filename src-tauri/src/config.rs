//! Where the desktop app finds its display, the broker binary and the drill catalog.

use std::path::{Path, PathBuf};

/// Linux/BSD need an X11 or Wayland display; GTK would panic without one.
pub fn check_display() -> Result<(), String> {
    if cfg!(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd")) {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err("clusterlab desktop needs a display (DISPLAY is not set); run it under a desktop session or xvfb-run".into());
        }
    }
    Ok(())
}

/// (broker binary, drills dir), or a message naming what is missing and how to get it.
pub fn locate() -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    Ok((broker_bin(&exe)?, drills_dir(&exe)?))
}

/// $CLUSTERLAB_BROKER_BIN, else `clusterlab-broker` next to this executable (same target dir).
fn broker_bin(exe: &Path) -> Result<PathBuf, String> {
    let (path, from) = match std::env::var_os("CLUSTERLAB_BROKER_BIN") {
        Some(p) => (PathBuf::from(p), "$CLUSTERLAB_BROKER_BIN"),
        None => (exe.with_file_name("clusterlab-broker"), "next to clusterlab-desktop"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("broker binary not found at {} ({from}); build it with `cargo build -p broker` or set CLUSTERLAB_BROKER_BIN", path.display()))
    }
}

/// $CLUSTERLAB_DRILLS, else the repository's labs/drills seen from target/<profile>/.
fn drills_dir(exe: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CLUSTERLAB_DRILLS") {
        let p = PathBuf::from(p);
        return if p.is_dir() {
            Ok(p)
        } else {
            Err(format!("$CLUSTERLAB_DRILLS={} is not a directory", p.display()))
        };
    }
    let repo = exe.parent().and_then(Path::parent).and_then(Path::parent);
    match repo.map(|r| r.join("labs/drills")) {
        Some(p) if p.is_dir() => Ok(p),
        p => Err(format!(
            "drill catalog not found{}; set CLUSTERLAB_DRILLS to the repository's labs/drills",
            p.map(|p| format!(" at {}", p.display())).unwrap_or_default()
        )),
    }
}

/// `--start` on the command line or CLUSTERLAB_START=1: start the cluster as the window opens.
pub fn start_on_launch() -> bool {
    std::env::args().skip(1).any(|a| a == "--start")
        || std::env::var("CLUSTERLAB_START").is_ok_and(|v| v == "1")
}
