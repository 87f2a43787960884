use std::process::ExitCode;

use server::{config::Settings, startup::Application, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("signoff: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["unlock-account", username] => return unlock_account(&settings, username).await,
        _ => {
            eprintln!(
                "usage: server                         serve (configured by the environment)\n       \
                 server unlock-account NAME    reopen an account closed after too many failed sign-ins"
            );
            return ExitCode::from(2);
        }
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("signoff: could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("listening on http://{}", app.local_addr());
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("signoff: server error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `server unlock-account NAME`: after `LOGIN_ACCOUNT_LOCK` consecutive failed sign-ins an account
/// accepts sign-ins only from clients it knows; this reopens it to every client.
async fn unlock_account(settings: &Settings, username: &str) -> ExitCode {
    let db = match signoff::Signoff::open_database(&settings.signoff).await {
        Ok(db) => db,
        Err(error) => {
            eprintln!("signoff: could not open the database: {error}");
            return ExitCode::FAILURE;
        }
    };
    match signoff::backend::unlock_account(&db, username).await {
        Ok(true) => {
            println!("signoff: {username} is unlocked");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("signoff: no account named {username}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("signoff: could not unlock {username}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish before the process exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
