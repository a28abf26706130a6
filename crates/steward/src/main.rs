fn main() -> std::process::ExitCode {
    // Before anything else, while this process is one thread: as a container's PID 1,
    // steward forks an init that reaps orphans and forwards signals (init/).
    steward::init::take_pid1_duties();
    steward::cli::main()
}
