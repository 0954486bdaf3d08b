//! The input the fuzz target (`net/fuzz`, cargo-fuzz) and the randomized test below feed to a
//! peer's connection: arbitrary bytes, cut into arbitrary pieces, on arbitrary streams,
//! before or after a valid handshake. Whatever the bytes, decoding must not panic, must not
//! buffer more than one frame, and must stop at the first error.

use super::client::ClientHandshake;
use super::message::Hello;
use super::server::{ServerConnection, ServerEvent, ServerSettings};

/// The frame limit used by fuzzing: small, so that oversized frames are reachable.
pub const FUZZ_MAX_FRAME: usize = 1 << 12;

/// Runs one fuzz input. The first byte chooses whether a valid hello comes first and how the
/// rest is cut; every following piece goes to a stream chosen by its first byte. Returns how
/// many events the connection produced after the handshake.
pub fn run_input(data: &[u8]) -> usize {
    let Some((&control, rest)) = data.split_first() else {
        return 0;
    };
    let settings = ServerSettings {
        name: "fuzz".into(),
        token: "0123456789abcdef".into(),
        memory: 1 << 20,
        max_frame: FUZZ_MAX_FRAME,
    };
    let mut conn = ServerConnection::new(settings);
    if control & 1 == 1 {
        let hello = Hello {
            token: "0123456789abcdef".into(),
            from: "fuzz".into(),
            session: 1,
            build: "fuzz".into(),
        };
        conn.handle_data(0, &ClientHandshake::hello_bytes(&hello));
        assert!(conn.is_ready(), "a valid hello must be accepted");
    }
    drain(&mut conn);
    let piece = 1 + (control >> 1) as usize;
    let mut closed = conn.is_closed();
    let mut count = 0;
    for chunk in rest.chunks(piece) {
        let (stream, bytes) = chunk
            .split_first()
            .map_or((0, chunk), |(s, b)| (*s as u64 % 4, b));
        if bytes.is_empty() {
            conn.handle_finish(stream);
        } else {
            conn.handle_data(stream, bytes);
        }
        let events = drain(&mut conn);
        count += events.len();
        if closed {
            assert!(events.is_empty(), "a closed connection produced events");
        }
        closed = conn.is_closed();
    }
    count
}

fn drain(conn: &mut ServerConnection) -> Vec<ServerEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::message::Request;
    use crate::protocol::stream::{BatchWriter, write_message};

    /// A small xorshift generator: the test is the same on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn valid_request_bytes() -> Vec<u8> {
        let mut wire = BytesMut::new();
        // Stream byte 1, then a put with a batch.
        write_message(
            &Request::Put {
                partition: 3,
                lineage: Some("x".into()),
            },
            &mut wire,
        );
        let b = arrow::array::RecordBatch::try_from_iter([(
            "x",
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3])) as _,
        )])
        .unwrap();
        let mut w = BatchWriter::new(&b.schema(), FUZZ_MAX_FRAME).unwrap();
        w.write(&b, &mut wire).unwrap();
        w.finish(&mut wire).unwrap();
        wire.to_vec()
    }

    /// Random and mutated inputs through the same function as the fuzz target, briefly, on
    /// every test run.
    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let valid = valid_request_bytes();
        let frame = |control: u8, body: &[u8]| {
            // Pieces of `piece` bytes: a stream byte (1), then `piece - 1` bytes of the body.
            let mut input = vec![control];
            for chunk in body.chunks((control >> 1) as usize) {
                input.push(1);
                input.extend_from_slice(chunk);
            }
            input
        };
        // Unchanged, the request decodes: message, schema, batch, end.
        for control in [3u8, 7, 101, 255] {
            assert_eq!(run_input(&frame(control, &valid)), 4, "control {control}");
        }
        for round in 0..3000 {
            let control = (rng.next() & 0xff) as u8 | 3;
            let input = if round % 2 == 0 {
                // The valid request with a few bytes flipped.
                let mut body = valid.clone();
                for _ in 0..1 + rng.next() % 3 {
                    let i = (rng.next() as usize) % body.len();
                    body[i] ^= (rng.next() & 0xff) as u8 | 1;
                }
                frame(control, &body)
            } else {
                let mut input = vec![control];
                let len = (rng.next() % 600) as usize;
                input.extend((0..len).map(|_| (rng.next() & 0xff) as u8));
                input
            };
            run_input(&input);
        }
    }
}
