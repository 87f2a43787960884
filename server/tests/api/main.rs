//! Integration tests: each starts the real server on a random port with a fresh SQLite file and
//! speaks HTTP to it. One binary, so the crates are linked once.

mod authenticator;
mod helpers;
mod idp;
mod smtp;

mod abuse;
mod account;
mod connections;
mod cross_site;
mod events;
mod forms;
mod hardening;
mod health;
mod instances;
mod lifecycle;
mod login;
mod logout;
mod mail;
mod names;
mod oidc;
mod pages;
mod passkeys;
mod postgres_only;
mod proxy;
mod recovery;
mod register;
mod restart;
mod soak;
mod stepup;
mod sweep;
mod throttle;
mod wire;
