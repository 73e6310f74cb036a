//! Simulator tests: whole sessions against the server engine (the peer under test), scripted
//! server messages for the checks the engine never trips, and the wire (HTTP, UDP push, `run`).

mod firmware;
mod fumo;
mod peer;
mod scripted;
mod sessions;
mod wire;
