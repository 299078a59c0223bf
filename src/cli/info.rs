//! `patrack info`

use crate::device;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<()> {
    println!("patrack {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch: {} (tch 0.24.0)", device::torch_version());
    let cuda = device::load_cuda();
    match &cuda {
        Ok(()) => println!("libtorch_cuda.so: loaded"),
        Err(e) => println!("libtorch_cuda.so: not loaded ({e})"),
    }
    let available = tch::Cuda::is_available();
    println!("CUDA available: {available}");
    if tch::utils::has_cudart() {
        println!("CUDA runtime: {}", format_cuda_version(tch::utils::version_cudart()));
    }
    println!("cuDNN available: {}", tch::Cuda::cudnn_is_available());
    if tch::Cuda::cudnn_is_available() {
        println!("cuDNN version: {}", tch::utils::version_cudnn());
    }
    let count = if available { tch::Cuda::device_count() } else { 0 };
    println!("devices: cpu{}", (0..count).map(|i| format!(", cuda:{i}")).collect::<String>());
    println!("CPU threads: {} (interop {})", tch::get_num_threads(), tch::get_num_interop_threads());
    println!(
        "MKL: {}  oneDNN: {}  OpenMP: {}",
        tch::utils::has_mkl(),
        tch::utils::has_mkldnn(),
        tch::utils::has_openmp()
    );
    let flags = cpu_flags();
    let has = |f: &str| flags.iter().any(|x| x == f);
    println!(
        "CPU: {}\n  AVX2: {}  AVX-512: {}  AMX (bf16 fast path): {}",
        cpu_model().unwrap_or_else(|| "unknown".into()),
        has("avx2"),
        has("avx512f"),
        has("amx_bf16")
    );
    if !has("amx_bf16") {
        println!("  note: without AMX, bf16 on the CPU is slower than fp32; use --precision fp32");
    }
    Ok(())
}

/// cudart encodes 13.0 as 13000.
fn format_cuda_version(v: i64) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

fn cpuinfo() -> String {
    std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()
}

fn cpu_model() -> Option<String> {
    cpuinfo()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

/// The CPU feature flags of the first core (Linux).
pub fn cpu_flags() -> Vec<String> {
    cpuinfo()
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}
