//! Measurements read from the operating system, the few process settings
//! the measuring tools need, and, inside the crate, every call that goes
//! past std, `mio` and `socket2` to the OS: the crate's only OS-specific code.
//!
//! * [`cpu_time`], [`context_switches`], [`open_fds`] — cheap readings of this
//!   process, for tests and in-process benchmarks.
//! * [`ProcessStats`] — one snapshot of a whole process, this one
//!   ([`ProcessStats::current`]) or another ([`ProcessStats::of`]): CPU time,
//!   context switches (total and per thread), resident memory now and at its
//!   peak, threads, open fds. Two snapshots give the cost of what happened
//!   between them ([`ProcessStats::cpu_since`], [`ProcessStats::switches_since`]).
//! * [`fd_limit`], [`raise_fd_limit`], [`cpu_affinity`], [`set_cpu_affinity`] —
//!   what a load test needs before it opens thousands of sockets or pins a
//!   server and its client to different CPUs.
//! * [`peer_cred`] — who is at the other end of a Unix socket ([`PeerCred`]).
//! * [`notify`] — tells a service manager (systemd's `Type=notify`) that the
//!   server is ready or stopping.
//!
//! # Portability
//!
//! The crate builds on Linux, Android, macOS and iOS, FreeBSD, DragonFly,
//! NetBSD, OpenBSD and illumos. `getrusage` and `setrlimit` work on all of
//! them. Everything read from `/proc` and the CPU affinity are Linux-only:
//! elsewhere those functions return `None` or an
//! [`io::ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported) error.
//! The server's own socket calls (sends without `SIGPIPE`, a peek at the
//! receive queue, load-balanced `SO_REUSEPORT`) are portable but for the
//! last, which only Linux, Android, FreeBSD and DragonFly offer; elsewhere
//! a server spreads its connections with an acceptor thread instead.
//! Datagrams go in batches (`recvmmsg`, `sendmmsg`) on Linux and Android,
//! one system call per datagram elsewhere.

mod activation;
mod affinity;
mod error;
mod limits;
mod mmsg;
mod net;
mod notify;
mod passing;
mod process;
mod rusage;
mod signals;
mod unix;

pub use affinity::{cpu_affinity, set_cpu_affinity};
pub use limits::{fd_limit, raise_fd_limit};
pub use notify::notify;
pub use process::{ContextSwitches, ProcessStats, ThreadStats, open_fds};
pub use rusage::{CpuTime, context_switches, cpu_time};
pub use unix::{PeerCred, peer_cred};

pub(crate) use activation::{is_listening_stream, listen_fds};
#[cfg(test)]
pub(crate) use error::errno;
pub(crate) use error::{is_in_progress, is_out_of_resources, is_out_of_threads, is_pending_connection_error};
pub(crate) use mmsg::{Done as BatchDone, RecvBatch, SendBatch, recv_batch, send_batch};
#[cfg(feature = "tls")]
pub(crate) use net::recv_slice;
pub(crate) use net::{
    REUSE_PORT_BALANCES, peek_unread, poll_readable, recv, send_nosignal, send_vectored_nosignal,
    set_reuse_port,
};
pub(crate) use passing::{MAX_PASSED_FDS, recv_with_fds, send_with_fds};
pub(crate) use signals::TerminationSignals;
