//! Fuzzes the escape of cgroup directory names: any bytes escape without panicking, and the
//! escape gives back exactly the bytes it was given (so no two names read the same).
#![no_main]

use cgscope::model::cgroup::{escape_name, unescape_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = escape_name(data);
    assert_eq!(unescape_name(&text).as_ref(), data);
});
