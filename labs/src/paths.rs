//! Where Cluster Lab finds its parts and keeps its state, for the CLI and the desktop app alike.
//!
//! Parts (the broker binary, the drill catalog) are found in this order: an explicit path, an
//! environment variable, next to the running executable (an installed package puts
//! `clusterlab-broker` beside `clusterlab` in /usr/bin and the drills in /usr/share/clusterlab),
//! then the source tree seen from `target/<profile>/`.
//!
//! State lives in the platform dirs (`directories`; on Linux the XDG dirs): preferences in the
//! config dir, recent runs and node data in the data dir. The CLI and the window share them, so
//! `clusterlab runs list` shows the window's runs.

use std::path::{Path, PathBuf};

use crate::error::LabError;

fn project() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "clusterlab", "clusterlab")
}

/// The user's data dir for Cluster Lab (no home directory, e.g. a bare container: the temp dir).
pub fn data_dir() -> PathBuf {
    project().map(|d| d.data_dir().to_path_buf()).unwrap_or_else(|| std::env::temp_dir().join("clusterlab"))
}

/// The user's config dir for Cluster Lab.
pub fn config_dir() -> PathBuf {
    project()
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("clusterlab-config"))
}

/// Recent runs: `<data>/recent-runs`, or under `data_root` when a command was given one.
pub fn recent_runs_dir(data_root: Option<&Path>) -> PathBuf {
    data_root.map(Path::to_path_buf).unwrap_or_else(data_dir).join("recent-runs")
}

/// Preferences (last cluster settings, UI preferences, the recent-runs cap): in the config dir,
/// or under `data_root` when a command was given one (a lab for one experiment leaves the user's
/// own preferences alone).
pub fn preferences_file(data_root: Option<&Path>) -> PathBuf {
    match data_root {
        Some(root) => root.join("preferences.json"),
        None => config_dir().join("preferences.json"),
    }
}

/// The broker executable: `explicit`, else $CLUSTERLAB_BROKER_BIN, else `clusterlab-broker`
/// next to this executable.
pub fn broker_bin(explicit: Option<PathBuf>) -> Result<PathBuf, LabError> {
    let (path, hint) = match explicit.or_else(|| std::env::var_os("CLUSTERLAB_BROKER_BIN").map(PathBuf::from))
    {
        Some(p) => (p, "as given"),
        None => (
            std::env::current_exe()
                .map_err(|source| LabError::Io { what: "locating this executable".into(), source })?
                .with_file_name("clusterlab-broker"),
            "build it with `cargo build -p broker`, or pass --broker-bin / set CLUSTERLAB_BROKER_BIN",
        ),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::BinaryNotFound { what: "clusterlab-broker", path, hint: hint.into() })
    }
}

/// The drill catalog: `explicit`, $CLUSTERLAB_DRILLS, `./labs/drills`, the installed
/// `<prefix>/share/clusterlab/drills` (`<prefix>/bin` holds this executable), or the
/// repository's `labs/drills` seen from `target/<profile>/`.
pub fn drills_dir(explicit: Option<PathBuf>) -> Result<PathBuf, LabError> {
    catalog_dir(explicit, "drill catalog", "CLUSTERLAB_DRILLS", "drills", "--drills")
}

/// The guided lessons, found like the drills: `explicit`, $CLUSTERLAB_LESSONS, `./labs/lessons`,
/// `<prefix>/share/clusterlab/lessons`, or the repository's `labs/lessons`.
pub fn lessons_dir(explicit: Option<PathBuf>) -> Result<PathBuf, LabError> {
    catalog_dir(explicit, "lesson catalog", "CLUSTERLAB_LESSONS", "lessons", "--lessons")
}

fn catalog_dir(
    explicit: Option<PathBuf>,
    what: &'static str,
    env: &str,
    sub: &str,
    flag: &str,
) -> Result<PathBuf, LabError> {
    let named: Option<PathBuf> = explicit.or_else(|| std::env::var_os(env).map(PathBuf::from));
    if let Some(p) = named {
        return if p.is_dir() {
            Ok(p)
        } else {
            Err(LabError::InvalidArgument { what, detail: format!("{} is not a directory", p.display()) })
        };
    }
    let mut candidates = vec![PathBuf::from("labs").join(sub)];
    if let Ok(exe) = std::env::current_exe() {
        let bin = exe.parent();
        if let Some(prefix) = bin.and_then(Path::parent) {
            candidates.push(prefix.join("share/clusterlab").join(sub));
            if let Some(repo) = prefix.parent() {
                candidates.push(repo.join("labs").join(sub));
            }
        }
    }
    candidates.iter().find(|p| p.is_dir()).cloned().ok_or_else(|| LabError::InvalidArgument {
        what,
        detail: format!(
            "not found (looked in {}): pass {flag} DIR or set {env}",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_drill_dir_that_is_not_there_says_so() {
        let err = drills_dir(Some("/nonexistent/drills".into())).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/drills is not a directory"), "{err}");
    }

    #[test]
    fn a_missing_broker_names_the_path_it_tried() {
        let err = broker_bin(Some("/nonexistent/clusterlab-broker".into())).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/clusterlab-broker"), "{err}");
    }

    #[test]
    fn recent_runs_follow_a_given_data_root() {
        assert_eq!(recent_runs_dir(Some(Path::new("/tmp/x"))), PathBuf::from("/tmp/x/recent-runs"));
    }
}
