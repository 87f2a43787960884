//! Integration tests: each starts the real server on a random port with a fresh SQLite file and
//! speaks HTTP to it. One binary, so the crates are linked once.

mod helpers;

mod account;
mod cross_site;
mod hardening;
mod health;
mod lifecycle;
mod login;
mod logout;
mod pages;
mod register;
mod restart;
mod throttle;
