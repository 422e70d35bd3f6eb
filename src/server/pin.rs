//! [`Pin`]: whether, and to which CPUs, a server's loop threads are pinned.

use std::io;

use crate::sys;

/// Where a [`Server`](crate::Server)'s loop threads may run.
///
/// Pinning loop *i* to one CPU keeps its caches warm and its connections'
/// work off the other loops' cores, as Netty's epoll transport, nginx's
/// `worker_cpu_affinity` or Seastar do. The trade-offs: a pinned loop cannot
/// move away from a noisy neighbour (another process, an interrupt-heavy
/// core, a load generator on the same machine), and with more loops than
/// CPUs two loops share one. Leave it off unless the machine is dedicated to
/// the server, or a benchmark wants the server and its load generator on
/// separate cores.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pin {
    /// The default: the OS schedules loop threads anywhere allowed.
    #[default]
    Off,
    /// Loop *i* runs on the *i*-th CPU of the set the process may use
    /// (wrapping around when there are more loops than CPUs).
    Allowed,
    /// Loop *i* runs on the *i*-th CPU of this list (wrapping around).
    Cpus(Vec<usize>),
}

impl Pin {
    /// The CPU of each of `loops` loops, or `None` when not pinning.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] where the OS cannot pin threads
    /// (anything but Linux); `InvalidInput` for an empty list.
    pub(crate) fn cpus(&self, loops: usize) -> io::Result<Option<Vec<usize>>> {
        let set = match self {
            Pin::Off => return Ok(None),
            Pin::Allowed => sys::cpu_affinity()?,
            Pin::Cpus(cpus) => cpus.clone(),
        };
        if set.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no CPU to pin loops to",
            ));
        }
        Ok(Some((0..loops).map(|i| set[i % set.len()]).collect()))
    }
}

/// Pins the calling thread (a loop's, as it starts) to `cpu`.
///
/// # Errors
///
/// The OS's refusal, naming the CPU.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    sys::set_cpu_affinity(&[cpu])
        .map_err(|e| io::Error::new(e.kind(), format!("cannot pin a loop to CPU {cpu}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_take_the_listed_cpus_in_turn() {
        let pin = Pin::Cpus(vec![3, 5]);
        assert_eq!(pin.cpus(3).unwrap(), Some(vec![3, 5, 3]));
        assert_eq!(Pin::Off.cpus(3).unwrap(), None);
        assert_eq!(
            Pin::Cpus(vec![]).cpus(1).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
