//! Unit tests on hand-made histories. `H` builds them tersely: every op gets an explicit time
//! so window and ordering tests do not depend on the wall clock.

mod anomalies;
mod clean;
mod expect_live;
mod group;

use crate::history::{History, Op, OpKind, OpType};

use super::{check, CheckOptions, Verdict};

pub(super) const MS: u64 = 1_000_000;
pub(super) const TOPIC: &str = "t";

#[derive(Default)]
pub(super) struct H {
    pub h: History,
}

impl H {
    fn op(&mut self, process: u32, ty: OpType, kind: OpKind, value: &str, t: u64) -> Op {
        Op::new(process, ty, kind, TOPIC).value(value).time(t)
    }

    pub fn invoke(&mut self, process: u32, value: &str, t: u64) -> &mut H {
        let op = self.op(process, OpType::Invoke, OpKind::Send, value, t);
        self.h.push(op);
        self
    }

    pub fn ok(&mut self, process: u32, value: &str, partition: i32, offset: i64, t: u64) -> &mut H {
        let op = self.op(process, OpType::Ok, OpKind::Send, value, t).at(partition, offset);
        self.h.push(op);
        self
    }

    pub fn fail(&mut self, process: u32, value: &str, t: u64) -> &mut H {
        let op = self.op(process, OpType::Fail, OpKind::Send, value, t).error("NOT_LEADER");
        self.h.push(op);
        self
    }

    pub fn info(&mut self, process: u32, value: &str, t: u64) -> &mut H {
        let op = self.op(process, OpType::Info, OpKind::Send, value, t).error("timed out");
        self.h.push(op);
        self
    }

    /// Invoke immediately followed by its ack.
    pub fn send(&mut self, process: u32, value: &str, partition: i32, offset: i64, t: u64) -> &mut H {
        self.invoke(process, value, t).ok(process, value, partition, offset, t + MS)
    }

    pub fn read(&mut self, consumer: u32, value: &str, partition: i32, offset: i64, t: u64) -> &mut H {
        let op = self.op(consumer, OpType::Ok, OpKind::Poll, value, t).at(partition, offset);
        self.h.push(op);
        self
    }

    pub fn check(&self) -> Verdict {
        check(&self.h, &[], &CheckOptions::default())
    }
}
