#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aetherd::fuzz::catalog_index(data));
