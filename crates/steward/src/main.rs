fn main() -> std::process::ExitCode {
    // The relocation table is read by now; its 0.2 MB need not stay resident (loader.rs).
    steward::loader::release_relocations();
    // Before anything else, while this process is one thread: as a container's PID 1,
    // steward forks an init that reaps orphans and forwards signals (init/).
    steward::init::take_pid1_duties();
    steward::cli::main()
}
