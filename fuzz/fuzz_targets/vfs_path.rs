#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aetherd::fuzz::vfs_path(data));
