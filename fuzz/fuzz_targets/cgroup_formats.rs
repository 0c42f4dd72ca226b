//! Fuzzes every kernel-format parser with the same input: none may panic. The list is the
//! one the property tests use.
#![no_main]

#[path = "../../tests/support/parsers.rs"]
mod parsers;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parsers::every_parser(data);
});
