//! Build script: links the `orch` executable at a fixed address on Linux with glibc.
//!
//! Agents run `orch task done` and `orch next` once or more per task, so most of their CPU is the
//! cost of starting a process. A position-independent executable starts by applying about 13,000
//! relocations to its own data, and every page they touch is copied on write: about 40 page
//! faults that cost several microseconds each on a virtual machine. Linked with `-no-pie` the
//! linker resolves them once, at build time (README "Benchmarks"). Only the executables of this
//! package get the flag; the library, the tests and the benches are built as cargo asks. The price
//! is that the executable's own code is not at a random address (shared libraries and the heap
//! still are); `ORCH_PIE=1` at build time keeps the default.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ORCH_PIE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("ORCH_PIE").is_none_or(|v| v != "1") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
