//! Devices, precisions and the run-time CUDA switch.
//!
//! The binaries link libtorch with `--as-needed`, which drops `libtorch_cuda.so` because no symbol
//! of it is referenced; its CUDA hooks then never register and libtorch reports no GPU (tch-rs
//! issue 980). [`load_cuda`] `dlopen`s it before the first CUDA query, so one binary runs on CPU-only
//! machines (the load fails harmlessly) and on GPU machines.

use std::ffi::CString;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use tch::{Device, Kind};

/// Errors choosing a device or precision.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device {0:?}: expected `cpu`, `cuda` or `cuda:N`")]
    Unknown(String),
    #[error("CUDA device {requested} requested but {reason}")]
    CudaUnavailable { requested: String, reason: String },
    #[error("unknown precision {0:?}: expected fp32, bf16 or fp16")]
    UnknownPrecision(String),
}

/// Numeric precision of the network weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    Fp16,
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::Fp16 => Kind::Half,
        }
    }
}

impl FromStr for Precision {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" | "float" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp16" | "f16" | "float16" | "half" => Ok(Precision::Fp16),
            _ => Err(DeviceError::UnknownPrecision(s.to_string())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        })
    }
}

/// Result of trying to load `libtorch_cuda.so`, computed once per process.
static CUDA_LOAD: OnceLock<Result<(), String>> = OnceLock::new();

/// Loads `libtorch_cuda.so` so that libtorch registers its CUDA hooks. Must run before the first
/// CUDA query of the process (libtorch caches the hooks). Returns why it failed, if it did.
pub fn load_cuda() -> Result<(), String> {
    CUDA_LOAD
        .get_or_init(|| {
            let name = CString::new("libtorch_cuda.so").expect("static name");
            // SAFETY: dlopen with a valid C string; the handle is kept for the process lifetime.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a thread-local C string or null.
                let err = unsafe { libc::dlerror() };
                let msg = if err.is_null() {
                    "dlopen failed".to_string()
                } else {
                    unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned()
                };
                Err(msg)
            } else {
                Ok(())
            }
        })
        .clone()
}

/// Parses `cpu`, `cuda`, `cuda:N` (also `auto`: the first GPU if any, else CPU) and checks that the
/// device exists. A requested GPU that is missing is an error, never a silent CPU run.
pub fn parse_device(s: &str) -> Result<Device, DeviceError> {
    let lower = s.trim().to_ascii_lowercase();
    let index = match lower.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "auto" => {
            let _ = load_cuda();
            return Ok(Device::cuda_if_available());
        }
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:") {
            Some(n) => n.parse::<usize>().map_err(|_| DeviceError::Unknown(s.to_string()))?,
            None => return Err(DeviceError::Unknown(s.to_string())),
        },
    };
    if let Err(e) = load_cuda() {
        return Err(DeviceError::CudaUnavailable {
            requested: s.to_string(),
            reason: format!("libtorch_cuda.so could not be loaded ({e}); fetch libtorch with --cuda"),
        });
    }
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(DeviceError::CudaUnavailable {
            requested: s.to_string(),
            reason: format!("libtorch sees {count} CUDA device(s)"),
        });
    }
    Ok(Device::Cuda(index))
}

/// Human-readable name of a device (`cpu`, `cuda:0`).
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Turns TF32 off or on for cuDNN convolutions and cuBLAS matmuls. libtorch enables TF32 for cuDNN
/// convolutions by default, which moves fp32 results by ~1e-3; parity runs switch it off.
pub fn set_tf32(enabled: bool) {
    // SAFETY: plain setters on libtorch's global context (csrc/shim.cpp).
    unsafe { patrack_set_tf32(enabled as libc::c_int) }
}

/// Whether cuDNN convolutions may use TF32.
pub fn tf32_cudnn() -> bool {
    // SAFETY: plain getter on libtorch's global context.
    unsafe { patrack_tf32_cudnn() != 0 }
}

/// The libtorch version the binary was compiled against (e.g. `2.11.0`).
pub fn torch_version() -> String {
    // SAFETY: returns a pointer to a static C string.
    unsafe { std::ffi::CStr::from_ptr(patrack_torch_version()) }.to_string_lossy().into_owned()
}

extern "C" {
    fn patrack_set_tf32(enabled: libc::c_int);
    fn patrack_tf32_cudnn() -> libc::c_int;
    fn patrack_torch_version() -> *const libc::c_char;
}

/// Memory in use on a CUDA device (whole device, from `cudaMemGetInfo`), in MB; `None` on the CPU
/// or when the CUDA runtime cannot be reached.
pub fn peak_gpu_mb(device: Device) -> Option<f64> {
    let Device::Cuda(_) = device else { return None };
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> libc::c_int;
    let lib = CString::new("libcudart.so.13").ok()?;
    let sym = CString::new("cudaMemGetInfo").ok()?;
    // SAFETY: dlopen/dlsym with valid C strings; the symbol has the documented CUDA signature.
    unsafe {
        let handle = libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if handle.is_null() {
            return None;
        }
        let f = libc::dlsym(handle, sym.as_ptr());
        if f.is_null() {
            return None;
        }
        let f: MemGetInfo = std::mem::transmute(f);
        let (mut free, mut total) = (0usize, 0usize);
        (f(&mut free, &mut total) == 0).then(|| (total - free) as f64 / (1024.0 * 1024.0))
    }
}

/// Treats denormal (subnormal) floats as zero in this thread's CPU arithmetic (x86-64: the FTZ and
/// DAZ bits of MXCSR); threads started afterwards (libtorch's OpenMP pool, the node's threads)
/// inherit the setting, so call it at start-up. Returns whether the setting was applied (false
/// on other architectures).
///
/// Why: the modality-entangled adapter's softmax over 256 or 64 positions saturates, and the
/// products of its near-zero weights are denormals; each denormal operand costs a microcode assist
/// of ~100 cycles. On the ViT-B network this made the PSFM cross-attention of the search map take
/// 28 ms instead of 5 ms (2-core Xeon, fp32). Values below 1.2e-38 become 0, far under the parity
/// tolerances; PyTorch exposes the same switch as `torch.set_flush_denormal(True)`.
pub fn set_flush_denormals(on: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        const FTZ_DAZ: u32 = 0x8040;
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register through a
        // valid 4-byte location; only the denormal modes change.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
            csr = if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly));
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = on;
        false
    }
}

/// Intra-op threads libtorch uses for CPU inference (its OpenMP pool); 0 keeps libtorch's own
/// default (one per core). Call before the first network runs.
///
/// The default policy is [`default_cpu_threads`]; see BENCHMARKS.md, "Thread policy", for the
/// measurements behind it.
pub fn set_cpu_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
    }
}

/// Networks up to this many parameters run on one intra-op thread by default.
pub const SMALL_MODEL_PARAMETERS: i64 = 20_000_000;

/// The default number of intra-op threads for a network of `parameters` parameters on a machine
/// with `cores` cores.
///
/// libtorch's OpenMP threads spin-wait for each other between the thousand small operators of a
/// step. On a robot the cores are shared, and a spinning thread that loses its core stalls all
/// the others until the scheduler brings it back: with two busy processes on a 2-core machine
/// the small demo model fell from 70 to 5 frames/s on two threads, while one thread has nobody
/// to wait for and slows only by its share of the core. Small networks (the demo models) gain
/// little from a second thread even on an idle machine, so they get one; large networks (ViT-B)
/// get half the cores, which leaves room for the node's other threads and for other processes.
pub fn default_cpu_threads(parameters: i64, cores: usize) -> usize {
    if parameters <= SMALL_MODEL_PARAMETERS {
        1
    } else {
        (cores / 2).max(1)
    }
}

/// Sets the intra-op CPU threads for a network of `parameters` parameters: `threads` when given
/// (non-zero), else [`default_cpu_threads`]. Returns the number set. The node's `threads`
/// parameter and the CLI's `--threads` flag both come here.
pub fn apply_thread_policy(threads: usize, parameters: i64) -> usize {
    let n = if threads > 0 { threads } else { default_cpu_threads(parameters, available_cores()) };
    set_cpu_threads(n);
    n
}

/// The variable libgomp, libtorch's OpenMP runtime, reads once when libtorch is loaded (before
/// `main`): `PASSIVE` makes idle pool threads sleep, the default lets them spin first.
pub const OMP_WAIT_POLICY: &str = "OMP_WAIT_POLICY";

/// The process could not restart itself with `OMP_WAIT_POLICY=PASSIVE`.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not restart with OMP_WAIT_POLICY=PASSIVE, so libtorch's OpenMP threads spin while idle \
     (slow CPU inference when other processes share the cores)"
)]
pub struct PassiveOmpError(#[source] std::io::Error);

/// Makes libtorch's OpenMP threads sleep while idle instead of spinning, unless the user chose a
/// wait policy: when `OMP_WAIT_POLICY` is unset, re-executes the running binary
/// (`/proc/self/exe`, the same arguments) with `OMP_WAIT_POLICY=PASSIVE`. The new process finds
/// the variable set and goes on, so this happens at most once; any value already set (also
/// `ACTIVE`, or empty) is kept. Call it first in `main`, before any thread starts. Returns only
/// when no restart was needed, or with the reason the restart failed (the process then goes on
/// with the spinning default).
///
/// Why a restart: libgomp reads the variable when the dynamic linker loads libtorch, before
/// `main`, and has no call to change it later. With the default policy an idle pool thread spins
/// (up to 300 000 iterations) before sleeping; between the many small operators of a tracker step
/// it never sleeps, and on cores shared with other processes the spinning threads take the time
/// slices the working thread needs (the table in BENCHMARKS.md, "Thread policy").
pub fn ensure_passive_omp() -> Result<(), PassiveOmpError> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(OMP_WAIT_POLICY).is_some() {
        return Ok(());
    }
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // `exec` returns only on failure.
    Err(PassiveOmpError(command.args(args).env(OMP_WAIT_POLICY, "PASSIVE").exec()))
}

/// Cores this process may run on (the affinity mask), at least 1.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Keeps large freed buffers in the process instead of returning them to the kernel.
///
/// glibc serves every allocation above 128 KiB with a fresh `mmap` and unmaps it on free, so each
/// frame buffer and each intermediate tensor is page-faulted in again, zeroed by the kernel, on
/// every use: measured 10-15 % of a tracker step and most of the node's per-frame cost. Raising the
/// mmap threshold to its maximum (32 MiB) and the trim threshold keeps that memory reused.
/// Call once at start-up, before threads start.
pub fn tune_allocator() {
    // SAFETY: mallopt only changes glibc allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_defaults() {
        assert_eq!(default_cpu_threads(3_000_000, 2), 1);
        assert_eq!(default_cpu_threads(100_000_000, 2), 1);
        assert_eq!(default_cpu_threads(100_000_000, 8), 4);
        assert_eq!(default_cpu_threads(100_000_000, 1), 1);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn denormal_results_are_flushed_only_when_asked() {
        let tiny = std::hint::black_box(1e-20f32);
        // 1e-40 is below the smallest normal f32 (1.18e-38).
        assert!(set_flush_denormals(false));
        let kept = std::hint::black_box(tiny) * std::hint::black_box(tiny);
        assert!(kept > 0.0 && !kept.is_normal(), "{kept:e}");
        assert!(set_flush_denormals(true));
        let flushed = std::hint::black_box(tiny) * std::hint::black_box(tiny);
        set_flush_denormals(false);
        assert_eq!(flushed, 0.0);
    }
}
