//! Fuzzes `Target::parse_host`: it never panics, and every host it accepts builds back to a
//! host that parses to the same target and context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use urlgrammar::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = Target::parse_host(input) {
        let built = parsed.target.origin_host(parsed.context.as_ref());
        let Ok(built) = built else { panic!("{input:?} parsed but cannot be rebuilt: {built:?}") };
        let again = Target::parse_host(&built).map(|h| (h.target, h.context, h.port));
        assert_eq!(again, Ok((parsed.target, parsed.context, None)), "{input:?} -> {built:?}");
    }
});
