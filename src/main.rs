//! The `tcluster` binary: everything lives in the library; this only hands over the arguments.

/// mimalloc instead of the system's allocator: a coordinator under load allocates and frees a
/// few small values per message, and glibc's allocator spent about a third of its time on that
/// (docs/performance/dispatch.md, "What a job costs").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tcluster::cli::main()
}
