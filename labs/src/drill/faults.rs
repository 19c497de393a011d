//! A fault step's parameters: which keys each fault takes, and what its targets may refer to at
//! that point of the drill. Split from `steps.rs` so each file reads in one sitting.

use std::ops::Range;

use toml::Spanned;

use super::raw::RawStep;
use super::source::{check_target, check_target_value, Source};
use super::spec::{Direction, Fault, Setup, Target};
use crate::error::LabError;
use crate::timeline::event::FaultName;

/// Keys a fault may carry, in the order messages list them.
const PARAMS: [&str; 7] = ["target", "minority", "from", "to", "direction", "delay_ms", "toxic"];

fn param_spans(raw: &RawStep) -> [Option<Range<usize>>; 7] {
    [
        raw.target.as_ref().map(Spanned::span),
        raw.minority.as_ref().map(Spanned::span),
        raw.from.as_ref().map(Spanned::span),
        raw.to.as_ref().map(Spanned::span),
        raw.direction.as_ref().map(Spanned::span),
        raw.delay_ms.as_ref().map(Spanned::span),
        raw.toxic.as_ref().map(Spanned::span),
    ]
}

/// (required, optional) parameters of each fault.
fn params_of(kind: FaultName) -> (&'static [&'static str], &'static [&'static str]) {
    use FaultName::*;
    match kind {
        Kill | Stop | Pause | Resume | Restart | PowerCut | CorruptSegment | FsyncFail | Isolate | Bridge
        | TakePort => (&["target"], &[]),
        SlowDisk => (&["target", "delay_ms"], &[]),
        Split => (&["minority"], &[]),
        CutLink => (&["from", "to"], &["direction"]),
        DelayLink => (&["from", "to", "delay_ms"], &[]),
        BlackholeLink | HealLink => (&["from", "to"], &[]),
        Toxic => (&["from", "to", "toxic"], &[]),
        Heal => (&[], &[]),
    }
}

pub(super) fn no_fault_keys(src: &Source, raw: &RawStep) -> Result<(), LabError> {
    let extra = PARAMS.iter().zip(param_spans(raw)).find_map(|(k, s)| s.map(|s| (*k, s)));
    let extra = extra.or(raw.repeat.as_ref().map(|r| ("repeat", r.span())));
    let extra = extra.or(raw.every_ms.as_ref().map(|r| ("every_ms", r.span())));
    match extra {
        Some((key, span)) => {
            Err(src.error(span, format!("`{key}` only applies to a fault step (add fault = \"...\")")))
        }
        None => Ok(()),
    }
}

/// What earlier faults left behind, for the targets that depend on it.
#[derive(Default)]
pub(super) struct FaultContext {
    /// A split ran and no heal since: `minority` names nodes.
    pub split_active: bool,
    /// Some fault hit nodes: `previous` names nodes.
    pub fault_with_nodes: bool,
}

pub(super) fn fault(
    src: &Source,
    setup: &Setup,
    raw: &RawStep,
    kind: &Spanned<FaultName>,
    history: &mut FaultContext,
) -> Result<Fault, LabError> {
    check_params(src, raw, kind)?;
    let fault = Params { src, setup, raw, history }.build(*kind.get_ref())?;
    match fault {
        Fault::Split { .. } => history.split_active = true,
        Fault::Heal => history.split_active = false,
        _ => {}
    }
    history.fault_with_nodes |= !matches!(fault, Fault::Heal | Fault::HealLink { .. });
    Ok(fault)
}

/// Every key the step carries applies to its fault, and every key the fault needs is there.
fn check_params(src: &Source, raw: &RawStep, kind: &Spanned<FaultName>) -> Result<(), LabError> {
    let (required, optional) = params_of(*kind.get_ref());
    let name = kind.get_ref().as_str();
    for (key, span) in PARAMS.iter().zip(param_spans(raw)) {
        if let Some(span) = span.filter(|_| !required.contains(key) && !optional.contains(key)) {
            let takes = if required.is_empty() { "no parameters".to_string() } else { required.join(", ") };
            return Err(
                src.error(span, format!("`{key}` does not apply to fault `{name}` (it takes {takes})"))
            );
        }
    }
    let spans = param_spans(raw);
    if let Some(missing) = PARAMS.iter().zip(&spans).find(|(k, s)| required.contains(k) && s.is_none()) {
        return Err(
            src.at(kind, format!("fault `{name}` needs `{}` (it takes {})", missing.0, required.join(", ")))
        );
    }
    Ok(())
}

/// A fault step's parameters, read once `check_params` has passed (required ones are present).
struct Params<'a> {
    src: &'a Source<'a>,
    setup: &'a Setup,
    raw: &'a RawStep,
    history: &'a FaultContext,
}

impl Params<'_> {
    fn build(&self, kind: FaultName) -> Result<Fault, LabError> {
        let raw = self.raw;
        let target = |t| self.target(t);
        use FaultName as K;
        Ok(match kind {
            K::Kill => Fault::Kill { target: target(&raw.target)? },
            K::Stop => Fault::Stop { target: target(&raw.target)? },
            K::Pause => Fault::Pause { target: target(&raw.target)? },
            K::Resume => Fault::Resume { target: target(&raw.target)? },
            K::Restart => Fault::Restart { target: target(&raw.target)? },
            K::PowerCut => Fault::PowerCut { target: target(&raw.target)? },
            K::CorruptSegment => Fault::CorruptSegment { target: target(&raw.target)? },
            K::FsyncFail => Fault::FsyncFail { target: target(&raw.target)? },
            K::Isolate => Fault::Isolate { target: target(&raw.target)? },
            K::Bridge => Fault::Bridge { target: target(&raw.target)? },
            K::TakePort => Fault::TakePort { target: target(&raw.target)? },
            // 0 is allowed here: it takes an earlier slow_disk away (how chaos heals the disk).
            K::SlowDisk => Fault::SlowDisk {
                target: target(&raw.target)?,
                delay_ms: *raw.delay_ms.as_ref().expect("checked").get_ref(),
            },
            K::Split => Fault::Split { minority: minority(self.src, self.setup, raw)? },
            K::CutLink => {
                let (from, to) = self.link()?;
                let direction = raw.direction.as_ref().map_or(Direction::Both, |d| *d.get_ref());
                Fault::CutLink { from, to, direction }
            }
            K::DelayLink => {
                let (from, to) = self.link()?;
                Fault::DelayLink { from, to, delay_ms: self.delay_ms()? }
            }
            K::BlackholeLink => {
                let (from, to) = self.link()?;
                Fault::BlackholeLink { from, to }
            }
            K::Toxic => {
                let (from, to) = self.link()?;
                Fault::Toxic { from, to, toxic: *raw.toxic.as_ref().expect("checked").get_ref() }
            }
            K::Heal => Fault::Heal,
            K::HealLink => {
                let (from, to) = self.link()?;
                Fault::HealLink { from, to }
            }
        })
    }

    /// A target, checked against the setup and against what earlier faults left behind.
    fn target(&self, t: &Option<Spanned<Target>>) -> Result<Target, LabError> {
        let t = t.as_ref().expect("required parameter checked above");
        match t.get_ref() {
            Target::Minority if !self.history.split_active => {
                Err(self.src.at(t, "`minority` only means something after a split step (and before heal)"))
            }
            Target::Previous if !self.history.fault_with_nodes => {
                Err(self.src.at(t, "`previous` refers to the node(s) of an earlier fault; there is none yet"))
            }
            _ => check_target(self.src, self.setup, t).map(|_| t.get_ref().clone()),
        }
    }

    /// `from` and `to`: two different single nodes.
    fn link(&self) -> Result<(Target, Target), LabError> {
        let raw = self.raw;
        let (from, to) = (self.target(&raw.from)?, self.target(&raw.to)?);
        for (t, s) in [(&from, &raw.from), (&to, &raw.to)] {
            if !t.is_single_node() {
                return Err(self.src.at(
                    s.as_ref().expect("checked"),
                    "a link joins two single nodes: all and minority are not allowed",
                ));
            }
        }
        if from == to {
            return Err(self.src.at(raw.to.as_ref().expect("checked"), "a link needs two different ends"));
        }
        Ok((from, to))
    }

    fn delay_ms(&self) -> Result<u64, LabError> {
        let d = self.raw.delay_ms.as_ref().expect("checked");
        if *d.get_ref() == 0 {
            Err(self.src.at(d, "delay_ms must be above 0"))
        } else {
            Ok(*d.get_ref())
        }
    }
}

fn minority(src: &Source, setup: &Setup, raw: &RawStep) -> Result<Vec<Target>, LabError> {
    let m = raw.minority.as_ref().expect("checked");
    let list = m.get_ref();
    if list.is_empty() || list.len() * 2 >= setup.nodes as usize {
        return Err(src.at(m, format!("minority must list fewer than half of the {} nodes", setup.nodes)));
    }
    for t in list {
        if matches!(t, Target::All | Target::Minority | Target::Previous) {
            return Err(src.at(m, format!("`{t}` cannot be part of a minority: name nodes or roles")));
        }
        check_target_value(src, setup, t, m.span())?;
    }
    Ok(list.clone())
}
