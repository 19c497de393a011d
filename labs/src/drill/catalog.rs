//! The drill catalog and the lesson catalog: every `*.toml` in one directory, parsed,
//! validated, sorted by name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::parse::parse_as;
use super::source::Kind;
use super::spec::DrillSpec;
use crate::error::LabError;

/// Loads every `*.toml` file of `dir`. Fails on the first bad file, so a broken drill is found
/// when the catalog loads (in CI), not when someone runs it in front of a class.
pub fn load_catalog(dir: &Path) -> Result<Vec<DrillSpec>, LabError> {
    load(dir, Kind::Drill)
}

/// Loads every lesson (`labs/lessons/*.toml`), checked like drills plus the lesson keys.
pub fn load_lessons(dir: &Path) -> Result<Vec<DrillSpec>, LabError> {
    load(dir, Kind::Lesson)
}

fn load(dir: &Path, kind: Kind) -> Result<Vec<DrillSpec>, LabError> {
    let what = if kind == Kind::Lesson { "lesson" } else { "drill" };
    let read_err = |what: String| move |source| LabError::Io { what, source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err(format!("listing {what}s in {}", dir.display())))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err(format!("listing {what}s in {}", dir.display())))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    // File order decides which of two duplicates is reported, so make it stable.
    files.sort();

    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut drills = Vec::with_capacity(files.len());
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(read_err(format!("reading {what} {}", file.display())))?;
        let drill = parse_as(&text, &file, kind)?;
        if let Some(first) = seen.insert(drill.name.clone(), file.clone()) {
            return Err(LabError::Drill {
                line: name_line(&text),
                column: 1,
                message: format!(
                    "duplicate {what} name '{}': {} already uses it",
                    drill.name,
                    first.display()
                ),
                file,
            });
        }
        drills.push(drill);
    }
    drills.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(drills)
}

/// The drill called `name`, if the catalog has one.
pub fn find<'a>(catalog: &'a [DrillSpec], name: &str) -> Option<&'a DrillSpec> {
    catalog.iter().find(|d| d.name == name)
}

/// Line of the top-level `name = ...` key (the spec does not keep spans; the file is at hand).
fn name_line(text: &str) -> usize {
    let is_name =
        |l: &str| l.trim_start().strip_prefix("name").is_some_and(|r| r.trim_start().starts_with('='));
    text.lines().position(is_name).map_or(1, |i| i + 1)
}
