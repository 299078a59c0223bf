#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| patrack_fuzz::targets::checkpoint_zip(data));
