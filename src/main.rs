//! The `spillframe` command line; see `spillframe --help`.

fn main() -> std::process::ExitCode {
    spillframe::cli::main()
}
