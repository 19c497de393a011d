//! The drill file being read (`Source`: byte spans to `file:line:column` errors) and the checks
//! of what a target names, shared by the setup, step and fault checks.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::spec::{Setup, Target, TopicPartition};
use crate::error::LabError;

/// Which catalog a file belongs to: lessons may use the keys that wait for and explain to a
/// learner; drills may not (a drill runs unattended, nobody would press Next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Drill,
    Lesson,
}

/// The text being parsed, to turn byte spans into 1-based line/column.
pub(super) struct Source<'a> {
    pub text: &'a str,
    pub file: &'a Path,
    pub kind: Kind,
}

impl Source<'_> {
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> LabError {
        let (line, column) = self.line_col(span.start);
        LabError::Drill { file: self.file.to_path_buf(), line, column, message: message.into() }
    }

    pub fn at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> LabError {
        self.error(spanned.span(), message)
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        // Columns count characters, not bytes, so a narration with an accent does not shift them.
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    }
}

/// Checks what a target names against the drill's own setup: node ids exist, role selectors
/// name the drill's topic and one of its partitions (a typo'd topic would otherwise only show up
/// as a wait that never finishes).
pub(super) fn check_target(src: &Source, setup: &Setup, t: &Spanned<Target>) -> Result<(), LabError> {
    check_target_value(src, setup, t.get_ref(), t.span())
}

pub(super) fn check_target_value(
    src: &Source,
    setup: &Setup,
    t: &Target,
    span: Range<usize>,
) -> Result<(), LabError> {
    if let Target::Node(id) = t {
        if *id > setup.nodes {
            return Err(src.error(span, format!("{t}: the drill has nodes 1 to {}", setup.nodes)));
        }
    }
    if let Some(tp) = t.partition() {
        check_partition(src, setup, tp, span)?;
    }
    Ok(())
}

pub(super) fn check_partition(
    src: &Source,
    setup: &Setup,
    tp: &TopicPartition,
    span: Range<usize>,
) -> Result<(), LabError> {
    if !setup.topic_names().contains(&tp.topic) {
        return Err(
            src.error(span, format!("topic '{}' is not this drill's topic '{}'", tp.topic, setup.topic))
        );
    }
    if tp.partition >= setup.partitions {
        return Err(src.error(
            span,
            format!(
                "partition {} does not exist: the topic has partitions 0 to {}",
                tp.partition,
                setup.partitions - 1
            ),
        ));
    }
    Ok(())
}
