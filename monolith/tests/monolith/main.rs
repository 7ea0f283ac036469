//! Tests of the monolith as a real process: what only a process can show (abort, signals,
//! CPU and memory burned by faults). The API itself is covered by the contract suite.

mod faults;
mod lifecycle;
mod process;
