#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apps::fuzz::program_output(data));
