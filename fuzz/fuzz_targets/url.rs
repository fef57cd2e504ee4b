//! Fuzzes `Address::parse` (every form, full URLs included): it never panics, and every
//! address it accepts rebuilds, in the form it was written in, to the same target and rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use urlgrammar::{Address, Form};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let Ok(a) = Address::parse(input, Some("default")) else { return };
    let built = match a.form {
        Form::Api => a.target.api_path(&a.rest),
        Form::Short => a.target.short(&a.rest),
        Form::Gateway => match a.target.gateway_url("localhost:8001", &a.rest) {
            Ok(url) => url,
            Err(e) => panic!("{input:?}: {e}"),
        },
        Form::Host | Form::Origin => match a.target.origin_url(a.context.as_ref(), Some(8001), &a.rest) {
            Ok(url) => url,
            Err(e) => panic!("{input:?}: {e}"),
        },
    };
    let again = match Address::parse(&built, None) {
        Ok(again) => again,
        Err(e) => panic!("{input:?} -> {built:?}: {e}"),
    };
    assert_eq!((&again.target, &again.context), (&a.target, &a.context), "{input:?} -> {built:?}");
    if a.form != Form::Host {
        assert_eq!(again.rest, a.rest, "{input:?} -> {built:?}");
    }
});
