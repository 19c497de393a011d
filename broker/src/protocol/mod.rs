//! Bytes <-> Kafka requests. Knows no storage and no API semantics.
//!
//! - `frame`      — length-prefixed frames with a size cap.
//! - `connection` — one client connection: read frames, decode headers, dispatch in arrival order,
//!   write responses in request order.

pub mod connection;
pub mod frame;
