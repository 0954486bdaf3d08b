//! Arbitrary bytes into a peer's connection state machine (frames, hello, messages, Arrow
//! IPC data): it must never panic. The same function runs briefly in the unit tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    spillframe_net::protocol::fuzz::run_input(data);
});
