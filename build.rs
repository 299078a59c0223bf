//! 1. Makes the binaries find libtorch without LD_LIBRARY_PATH: an rpath to the libtorch the crate
//!    was built against, plus one relative to the binary for a checkout that was moved or copied
//!    (`target/<profile>/patrack` -> `.libtorch/torch/lib`). LD_LIBRARY_PATH still overrides both.
//! 2. Compiles `csrc/shim.cpp`: the TF32 switch and the version string, which tch does not expose.
//! 3. With the `cuda` feature, compiles `csrc/cuda_graph.cpp` (CUDA graph capture/replay) and
//!    links libtorch_cuda. It needs a CUDA build of libtorch (`scripts/fetch-libtorch.sh --cuda`)
//!    and the CUDA runtime headers: `CUDA_INCLUDE_DIR`, else the `nvidia/cu13/include` of the
//!    NVIDIA wheels beside `torch/` (the layout of that script and of a pip install), else
//!    `$CUDA_HOME/include` or `/usr/local/cuda/include`; libcudart.so.13 likewise (`CUDA_LIB_DIR`).
//!    `PATRACK_CUDA_TYPECHECK=1` skips all that, for `cargo clippy --features cuda` without CUDA.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    ros_package_cfgs();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports the libtorch lib dir"));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../../.libtorch/torch/lib");

    let include = lib.parent().expect("libtorch root").join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-w")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .compile("patrack_shim");

    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        build_cuda_graph(&lib, &include);
    }
}

/// cfgs for what the r2r node can use from the ROS install it is built against: r2r generates
/// these packages' types only when the install has them, and its pre-generated doc-only bindings
/// (what CI type-checks with) lack `std_srvs` and r2r's sim-time support. So `~/reset` and
/// `~/enable` (`patrack_std_srvs`) and `use_sim_time` (`patrack_sim_time`) are compiled for real
/// ROS builds that have the packages, and said missing otherwise.
fn ros_package_cfgs() {
    println!("cargo:rerun-if-env-changed=AMENT_PREFIX_PATH");
    for (cfg, package) in [("patrack_std_srvs", "std_srvs"), ("patrack_sim_time", "rosgraph_msgs")] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os("CARGO_FEATURE_ROS").is_none() {
            continue;
        }
        let prefixes = std::env::var("AMENT_PREFIX_PATH").unwrap_or_default();
        let found = prefixes
            .split(':')
            .any(|p| !p.is_empty() && Path::new(p).join("share").join(package).join("package.xml").is_file());
        if found {
            println!("cargo:rustc-cfg={cfg}");
        } else if !prefixes.is_empty() {
            println!("cargo:warning=no {package} in AMENT_PREFIX_PATH: the node is built without what needs it");
        }
    }
}

fn build_cuda_graph(lib: &Path, include: &Path) {
    println!("cargo:rerun-if-changed=csrc/cuda_graph.cpp");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=PATRACK_CUDA_TYPECHECK");
    if std::env::var_os("PATRACK_CUDA_TYPECHECK").is_some() {
        // `cargo check`/`clippy --features cuda` on a machine without CUDA (CI): the Rust side is
        // type-checked, nothing is compiled or linked against CUDA (a build would fail to link).
        println!("cargo:warning=PATRACK_CUDA_TYPECHECK: the CUDA graph shim is not compiled (type-check only)");
        return;
    }
    if !lib.join("libtorch_cuda.so").exists() {
        panic!(
            "the `cuda` feature needs a CUDA build of libtorch, but {} has no libtorch_cuda.so \
             (scripts/fetch-libtorch.sh --cuda, then LIBTORCH=<dest>/torch)",
            lib.display()
        );
    }
    let cuda_include = find_cuda_dir(lib, "CUDA_INCLUDE_DIR", "include", "include", "cuda_runtime_api.h");
    cc::Build::new()
        .cpp(true)
        .file("csrc/cuda_graph.cpp")
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .include(cuda_include)
        .flag("-std=c++17")
        .flag("-w")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .compile("patrack_cuda_graph");
    println!("cargo:rustc-link-lib=dylib=torch_cuda");
    println!("cargo:rustc-link-lib=dylib=c10_cuda");
    // The CUDA runtime of the wheels (libtorch_cuda's own), found the way the headers were.
    let cudart = find_cuda_dir(lib, "CUDA_LIB_DIR", "lib", "lib64", "libcudart.so.13");
    println!("cargo:rustc-link-search=native={}", cudart.display());
    println!("cargo:rustc-link-lib=dylib:+verbatim=libcudart.so.13");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", cudart.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../../.libtorch/nvidia/cu13/lib");
}

/// The first folder holding `file`: `$env`, the NVIDIA wheels' `nvidia/cu13/<wheel_sub>` beside
/// libtorch's `torch/` (fetch-libtorch.sh and pip layouts), `$CUDA_HOME/<toolkit_sub>`, then
/// `/usr/local/cuda/<toolkit_sub>`.
fn find_cuda_dir(lib: &Path, env: &str, wheel_sub: &str, toolkit_sub: &str, file: &str) -> PathBuf {
    println!("cargo:rerun-if-env-changed={env}");
    let mut candidates: Vec<PathBuf> = std::env::var_os(env).map(PathBuf::from).into_iter().collect();
    if let Some(site) = lib.parent().and_then(Path::parent) {
        candidates.push(site.join("nvidia/cu13").join(wheel_sub));
    }
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        candidates.push(PathBuf::from(home).join(toolkit_sub));
    }
    candidates.push(PathBuf::from("/usr/local/cuda").join(toolkit_sub));
    candidates
        .iter()
        .find(|d| d.join(file).exists())
        .cloned()
        .unwrap_or_else(|| panic!("the `cuda` feature needs {file} (set {env}); looked in {candidates:?}"))
}
