//! Fuzzes `Target::parse_api_path`: it never panics, and whatever it accepts builds back to a
//! path that parses to the same target and rest, byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use urlgrammar::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok((target, rest)) = Target::parse_api_path(input) {
        let built = target.api_path(&rest);
        assert_eq!(Target::parse_api_path(&built), Ok((target, rest)), "{input:?} -> {built:?}");
    }
});
