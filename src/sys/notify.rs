//! The service manager's notification socket (`sd_notify(3)`): a datagram
//! of `KEY=VALUE` lines to the Unix socket `NOTIFY_SOCKET` names, a path or,
//! when it starts with `@`, a name in Linux's abstract namespace.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (lines such as `READY=1`, `STOPPING=1`, `MAINPID=1234`,
/// `STATUS=serving`) to the service manager, if the process has one that
/// listens: systemd with `Type=notify` sets `NOTIFY_SOCKET`. Returns whether
/// it was sent: `false` when `NOTIFY_SOCKET` is not set, which is not an
/// error (the process runs by hand, or under a manager that does not ask).
///
/// The variable is left in place, unlike `sd_notify`'s `unset_environment`,
/// so that every notice of the process's life reaches the manager.
///
/// # Errors
///
/// Those of sending the datagram (the socket gone, say), and `InvalidInput`
/// for an abstract name where the OS has none (outside Linux and Android).
///
/// # Examples
///
/// ```
/// // Outside systemd there is nobody to tell.
/// # unsafe { std::env::remove_var("NOTIFY_SOCKET") };
/// assert!(!evloop::sys::notify("READY=1")?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => send_abstract(&socket, name, state)?,
        None => {
            socket.send_to(state.as_bytes(), &target)?;
        }
    }
    log::debug!("told the service manager {state:?}");
    Ok(true)
}

/// Sends `state` to the abstract socket `name` (without its `@`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(socket: &UnixDatagram, name: &[u8], state: &str) -> io::Result<()> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// Abstract names are Linux's.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, name: &[u8], _: &str) -> io::Result<()> {
    let name = String::from_utf8_lossy(name);
    let msg = format!("NOTIFY_SOCKET @{name} is an abstract socket, which only Linux has");
    Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
}
