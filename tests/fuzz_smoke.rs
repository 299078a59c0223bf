//! The fuzz targets of `fuzz/` on every `cargo test`, without libFuzzer: each target runs over
//! its committed corpus (`fuzz/corpus/<target>/`, grown by the long coverage-guided runs) and over
//! a fixed number of deterministic mutations of it (bit flips, truncations, duplicated and
//! inserted bytes, overwritten length fields), so the smoke stays a few seconds however large the
//! corpora grow. No input may panic; the long runs and their figures are in BENCHMARKS.md
//! ("Reliability").

use std::path::Path;

#[path = "../fuzz/src/targets.rs"]
mod targets;

/// Mutated inputs per target, each from a corpus file picked at random.
const MUTATIONS_PER_TARGET: usize = 1500;

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
        let seeds: Vec<(&Path, Vec<u8>)> = files.iter().map(|f| (f.as_path(), std::fs::read(f).unwrap())).collect();
        let mutated = (0..MUTATIONS_PER_TARGET).map(|_| {
            let (file, seed) = &seeds[rng.below(seeds.len())];
            (*file, mutate(seed, &mut rng))
        });
        let mut cases = 0usize;
        for (file, input) in seeds.iter().map(|(f, s)| (*f, s.clone())).chain(mutated) {
            let outcome = std::panic::catch_unwind(|| target(&input));
            if outcome.is_err() {
                let path = std::env::temp_dir().join(format!("fuzz-smoke-{name}-crash"));
                std::fs::write(&path, &input).unwrap();
                panic!("{name} panicked on {} or a mutation of it; input saved to {}", file.display(), path.display());
            }
            cases += 1;
        }
        println!("{name}: {cases} cases from {} corpus files in {:.2} s", files.len(), started.elapsed().as_secs_f64());
    }
}

/// The `cdr` corpus reaches every input the node subscribes to and every service it offers: the
/// seeds' selector bytes (see `scripts/fuzz-seeds.sh`) cover all of them.
#[test]
fn cdr_corpus_has_a_seed_for_every_input_and_service() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cdr");
    let mut covered = [false; targets::CDR_SELECTORS];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(rest) = name.strip_prefix("seed-") {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            let selector = usize::from(bytes[0]) % targets::CDR_SELECTORS;
            assert_eq!(rest[..2].parse::<usize>().unwrap(), selector, "{name}: selector byte and name disagree");
            covered[selector] = true;
        }
    }
    let missing: Vec<usize> = (0..covered.len()).filter(|&i| !covered[i]).collect();
    assert!(missing.is_empty(), "no seed for selectors {missing:?}");
    assert_eq!(targets::CDR_SELECTORS, patrack::ros::inputs::Input::COUNT + patrack::ros::managed::Service::ALL.len());
}
