//! A parser for the server-sent-events format (`text/event-stream`, WHATWG HTML §9.2) over a
//! body that arrives in chunks cut anywhere: inside a line, inside `data:`, between the `\r` and
//! `\n` of a CRLF, inside a UTF-8 character.
//!
//! Only what a node's `/events` needs: `event:` and `data:` fields make an event; `id:`,
//! `retry:`, unknown fields and comment lines (axum's keep-alive is a bare `:`) are read and
//! dropped. An event the stream ends in the middle of is dropped, as the standard says.

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the event had none (the standard's `message`).
    pub name: String,
    /// The event's `data:` lines, joined with `\n`.
    pub data: String,
}

/// Turns chunks into events; keeps whatever a chunk left unfinished for the next one.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The start of a line whose end has not arrived. Kept as bytes, not text: a chunk may end
    /// inside a multi-byte character, while line ends are ASCII and so always split cleanly.
    partial: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` opening the next one completes that CRLF rather
    /// than ending an empty line (which would end an event early).
    after_cr: bool,
    /// The event being built.
    name: String,
    /// `None` until a `data:` line comes: an event without one is not dispatched.
    data: Option<String>,
}

impl SseParser {
    /// Reads one chunk; answers the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        let mut events = Vec::new();
        // A line ends at `\r\n`, `\n` or `\r`.
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.partial.extend_from_slice(&rest[..end]);
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            events.extend(self.line(&line));
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.strip_prefix(b"\n") {
                    Some(after_lf) => rest = after_lf,
                    None => self.after_cr = rest.is_empty(),
                }
            }
        }
        self.partial.extend_from_slice(rest);
        events
    }

    /// One complete line, without its end; answers the event a blank line completes.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // The standard resets the name even when there was no data to dispatch.
            let name = std::mem::take(&mut self.name);
            return self.data.take().map(|data| SseEvent { name, data });
        }
        // `field: value`, one optional space after the colon; a line without one is a field
        // with an empty value.
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.name = value.to_string(),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            // "" is a comment line; `id`, `retry` and unknown fields mean nothing to the lab.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent { name: name.into(), data: data.into() }
    }

    /// Everything `feed` answers when `body` arrives in the given pieces.
    fn parse_in(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        pieces.iter().flat_map(|piece| parser.feed(piece)).collect()
    }

    /// A stream like the broker's (axum writes `name: value` and LF), with a keep-alive, the
    /// `lagged` event, and the rest of the format a parser must not trip on: no space after the
    /// colon, `id:`/`retry:`, an event with two data lines, one with no name, one with no data,
    /// a multi-byte character, CRLF and bare CR line ends, and an unfinished event at the end.
    const BODY: &[u8] = b"event: telemetry\ndata: {\"seq\":1,\"message\":\"caf\xc3\xa9\"}\n\n\
        :\n\n\
        event:lagged\ndata:7\nid: 3\nretry: 100\n\n\
        data: first\ndata:  second\n\n\
        event: nothing\n\n\
        event: telemetry\r\ndata: {\"seq\":2}\r\n\r\n\
        event: telemetry\rdata: {\"seq\":3}\r\r\
        event: telemetry\ndata: {\"seq\":4}\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            event("telemetry", "{\"seq\":1,\"message\":\"café\"}"),
            event("lagged", "7"),
            event("", "first\n second"),
            event("telemetry", "{\"seq\":2}"),
            event("telemetry", "{\"seq\":3}"),
        ]
    }

    #[test]
    fn a_whole_body_parses_into_its_events() {
        assert_eq!(parse_in(&[BODY]), expected());
    }

    /// Cut in two at every byte: inside `data:`, inside a line, between `\r` and `\n`, inside `é`.
    #[test]
    fn a_body_cut_anywhere_parses_the_same() {
        for cut in 0..=BODY.len() {
            let (a, b) = BODY.split_at(cut);
            assert_eq!(parse_in(&[a, b]), expected(), "cut at byte {cut}");
        }
    }

    #[test]
    fn a_body_one_byte_at_a_time_parses_the_same() {
        let bytes: Vec<&[u8]> = BODY.chunks(1).collect();
        assert_eq!(parse_in(&bytes), expected());
    }

    /// An empty chunk between the `\r` and the `\n` of a CRLF must not make them two line ends.
    #[test]
    fn an_empty_chunk_inside_a_crlf_changes_nothing() {
        let events = parse_in(&[b"event: telemetry\r\ndata: x\r", b"", b"\nevent: other\r\n\r\n"]);
        assert_eq!(events, vec![event("other", "x")]);
    }
}
