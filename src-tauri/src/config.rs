//! Where the desktop app finds its display, the broker binary and the drill catalog.

use std::path::PathBuf;

/// Linux/BSD need an X11 or Wayland display; GTK would panic without one.
pub fn check_display() -> Result<(), String> {
    if cfg!(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd")) {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err("clusterlab desktop needs a display (DISPLAY is not set); \
                        run it under a desktop session or xvfb-run"
                .into());
        }
    }
    Ok(())
}

/// (broker binary, drills dir), or a message naming what is missing and how to get it. Found
/// as the CLI finds them (`labs::paths`): installed, beside this executable, or in the source tree.
pub fn locate() -> Result<(PathBuf, PathBuf), String> {
    let broker = labs::paths::broker_bin(None).map_err(|e| e.to_string())?;
    let drills = labs::paths::drills_dir(None).map_err(|e| e.to_string())?;
    Ok((broker, drills))
}

/// `--start` on the command line or CLUSTERLAB_START=1: start the cluster as the window opens.
pub fn start_on_launch() -> bool {
    std::env::args().skip(1).any(|a| a == "--start")
        || std::env::var("CLUSTERLAB_START").is_ok_and(|v| v == "1")
}
