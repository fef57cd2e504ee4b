//! Fuzzes `Target::parse_short`: it never panics, and whatever it accepts builds back (with
//! and without its namespace) to a short target that parses to the same target and rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use urlgrammar::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok((target, rest)) = Target::parse_short(input, Some("default")) {
        let built = target.short(&rest);
        assert_eq!(Target::parse_short(&built, None), Ok((target.clone(), rest.clone())), "{input:?} -> {built:?}");
        let relative = target.short_in(Some("default"), &rest);
        assert_eq!(Target::parse_short(&relative, Some("default")), Ok((target, rest)), "{input:?} -> {relative:?}");
    }
});
