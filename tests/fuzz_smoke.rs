//! The fuzz targets of `fuzz/` on every `cargo test`, without libFuzzer: each target runs over
//! its committed corpus (`fuzz/corpus/<target>/`) and over deterministic mutations of it (bit
//! flips, truncations, duplicated and inserted bytes, overwritten length fields). No input may
//! panic; the long coverage-guided runs and their figures are in BENCHMARKS.md ("Fuzzing").

use std::path::Path;

#[path = "../fuzz/src/targets.rs"]
mod targets;

/// Mutated inputs per corpus file.
const MUTATIONS_PER_FILE: usize = 300;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One deterministic mutation of `seed`.
fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if out.is_empty() {
            out.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out.truncate(at),
            2 => {
                let len = rng.below(16).min(out.len() - at);
                let chunk = out[at..at + len].to_vec();
                out.splice(at..at, chunk);
            }
            3 => out.insert(at, rng.next() as u8),
            // A length-like field set to an extreme value.
            4 => {
                let value = [0u32, 1, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000][rng.below(5)].to_le_bytes();
                for (i, b) in value.iter().enumerate() {
                    if let Some(slot) = out.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            _ => out[at] = [0u8, 0xff, b'[', b'{', b'"', b'\n'][rng.below(6)],
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let corpus_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (name, target) in targets::TARGETS {
        let dir = corpus_root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: empty corpus");
        let started = std::time::Instant::now();
        let mut cases = 0usize;
        for file in &files {
            let seed = std::fs::read(file).unwrap();
            let mut inputs = vec![seed.clone()];
            inputs.extend((0..MUTATIONS_PER_FILE).map(|_| mutate(&seed, &mut rng)));
            for input in inputs {
                let outcome = std::panic::catch_unwind(|| target(&input));
                if outcome.is_err() {
                    let path = std::env::temp_dir().join(format!("fuzz-smoke-{name}-crash"));
                    std::fs::write(&path, &input).unwrap();
                    panic!("{name} panicked on a mutation of {}; input saved to {}", file.display(), path.display());
                }
                cases += 1;
            }
        }
        println!("{name}: {cases} cases from {} corpus files in {:.2} s", files.len(), started.elapsed().as_secs_f64());
    }
}
