//! Bytes <-> Kafka requests, and the connection loop around them. No API semantics live here:
//! `connection` decodes headers and hands each request, with the node's state, to
//! `api::dispatch`, whose answers it writes back in order (the layer above `api` in `lib.rs`).
//!
//! - `frame`      — length-prefixed frames with a size cap.
//! - `connection` — one client connection: read frames, decode headers, dispatch in arrival order,
//!   write responses in request order.

pub mod connection;
pub mod frame;
