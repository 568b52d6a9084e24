//! `deployctl`: see `deployctl --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("deployctl: cannot start: {e}");
            return ExitCode::from(deployctl::exit::USAGE);
        }
    };
    let mut console = deployctl::Console::std();
    let code = runtime.block_on(deployctl::run(std::env::args_os(), &mut console));
    ExitCode::from(code)
}
