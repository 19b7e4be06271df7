/// The system's allocator, or `orch next`'s arena once that command opens it (see
/// `orch::prefault`).
#[global_allocator]
static HEAP: orch::prefault::Heap = orch::prefault::Heap;

fn main() -> std::process::ExitCode {
    orch::cli::main()
}
