//! The config parser and its validation, on any text: a config file is input from
//! whoever edits it, and a mistake must come back as an error naming the key, never as a
//! panic. What parses is shown by `strait check`, so printing it must not panic either.
//!
//! Input: the config text (invalid UTF-8 is skipped: files are read as UTF-8 first).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match strait::config::parse(text) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
});
