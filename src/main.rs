fn main() -> std::process::ExitCode {
    lighthouse_fs::cli::main()
}
