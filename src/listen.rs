//! Listening sockets sigshim holds for the app (`--listen`), and those systemd handed it
//! (socket activation), passed to every generation at fd 3 and up.
//!
//! This is what lets `--restart-on` restart an app without refusing a connection: the socket
//! stays open in sigshim from the first generation to the last, so connections that arrive
//! while one generation stops and the next starts wait in its backlog instead of meeting a
//! closed port. The same socket is handed over each time; never SO_REUSEPORT, which spreads
//! connections over several sockets and loses those queued on one that closes (pingora#427,
//! envoy#15818).
//!
//! The app finds them the systemd way (`LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID` = its own
//! PID, sd_listen_fds(3)) or the server-starter way (`SERVER_STARTER_PORT="8080=3;/tmp/s=4"`,
//! `SERVER_STARTER_GENERATION`). Parsing is pure; binding happens at set-up, before sigshim
//! blocks any signal (a host name is resolved then).

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The default backlog: the kernel caps it at net.core.somaxconn.
pub const BACKLOG: i32 = 4096;

/// One `--listen SPEC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub addr: Addr,
    pub backlog: i32,
    /// The name in LISTEN_FDNAMES (default: `tcp-PORT` or the socket file's name).
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// `tcp:[HOST]:PORT`; no host: every address (IPv6 and IPv4).
    Tcp { host: Option<String>, port: u16 },
    /// `unix:PATH`, with the socket file's mode and owner.
    Unix {
        path: PathBuf,
        mode: Option<u32>,
        owner: Option<String>,
    },
}

/// Parses `tcp:[HOST]:PORT[,backlog=N][,name=NAME]` and
/// `unix:PATH[,mode=0660][,owner=USER[:GROUP]][,backlog=N][,name=NAME]`.
pub fn parse_spec(spec: &str) -> Result<Spec, String> {
    let bad = |why: &str| format!("--listen '{spec}': {why}");
    let mut parts = spec.split(',');
    let head = parts.next().unwrap_or_default();
    let mut backlog = BACKLOG;
    let mut name = None;
    let (mut mode, mut owner) = (None, None);
    for opt in parts {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| bad(&format!("'{opt}' is not KEY=VALUE")))?;
        match k {
            "backlog" => {
                backlog = v
                    .parse::<i32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("backlog must be a positive number"))?
            }
            "name" => {
                if v.is_empty()
                    || v.contains(':')
                    || v.len() > 255
                    || v.bytes().any(|b| b.is_ascii_control())
                {
                    return Err(bad(
                        "a name is 1 to 255 printable bytes without ':' (LISTEN_FDNAMES)",
                    ));
                }
                name = Some(v.to_string());
            }
            "mode" => {
                mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|&m| m <= 0o777)
                        .ok_or_else(|| bad("mode is octal, e.g. 0660"))?,
                )
            }
            "owner" if !v.is_empty() => owner = Some(v.to_string()),
            _ => return Err(bad(&format!("unknown option '{k}'"))),
        }
    }
    let addr = match head.split_once(':') {
        Some(("tcp", rest)) => {
            if mode.is_some() || owner.is_some() {
                return Err(bad("mode and owner are for unix: sockets"));
            }
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected tcp:[HOST]:PORT"))?;
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("invalid port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Addr::Tcp {
                host: (!host.is_empty()).then(|| host.to_string()),
                port,
            }
        }
        Some(("unix", path)) if path.starts_with('/') => Addr::Unix {
            path: PathBuf::from(path),
            mode,
            owner,
        },
        Some(("unix", _)) => return Err(bad("the path must be absolute")),
        _ => return Err(bad("expected tcp:[HOST]:PORT or unix:PATH")),
    };
    let name = name.unwrap_or_else(|| match &addr {
        Addr::Tcp { port, .. } => format!("tcp-{port}"),
        Addr::Unix { path, .. } => path
            .file_name()
            .map(|n| n.to_string_lossy().replace(':', "_"))
            .unwrap_or_else(|| "unix".into()),
    });
    Ok(Spec {
        addr,
        backlog,
        name,
    })
}

/// A socket sigshim holds: its descriptor (close-on-exec in sigshim; each child gets a copy at
/// its number), its LISTEN_FDNAMES name, and what server-starter calls it.
pub struct Held {
    pub fd: OwnedFd,
    pub name: String,
    pub starter: String,
}

/// Creates and listens on `spec`'s socket.
pub fn bind(spec: &Spec) -> Result<Held, String> {
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "--listen {}: {what}: {}",
            show(&spec.addr),
            crate::sys::os_error(&e)
        )
    };
    match &spec.addr {
        Addr::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = match host {
                Some(h) => (h.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| fail("cannot resolve the host", e))?
                    .collect(),
                // Every address: IPv6 with IPv4 mapped, else IPv4 alone.
                None => vec![
                    SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, *port)),
                    SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, *port)),
                ],
            };
            let mut last = None;
            for a in &addrs {
                match tcp_listener(a, spec.backlog) {
                    Ok(fd) => {
                        let starter = match host {
                            None => port.to_string(),
                            Some(_) => a.to_string(),
                        };
                        return Ok(Held {
                            fd,
                            name: spec.name.clone(),
                            starter,
                        });
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(fail(
                "cannot listen",
                last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
            ))
        }
        Addr::Unix { path, mode, owner } => {
            let fd = unix_listener(path, spec.backlog).map_err(|e| fail("cannot listen", e))?;
            if let Some(m) = mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*m))
                    .map_err(|e| fail("cannot set its mode", e))?;
            }
            if let Some(o) = owner {
                let c =
                    crate::child::Credentials::resolve(o).map_err(|e| format!("--listen: {e}"))?;
                let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())
                    .map_err(|_| "--listen: the path contains a NUL byte".to_string())?;
                // SAFETY: chown with a NUL-terminated path.
                if unsafe { libc::chown(cpath.as_ptr(), c.uid, c.gid) } != 0 {
                    return Err(fail(
                        "cannot set its owner",
                        std::io::Error::last_os_error(),
                    ));
                }
            }
            Ok(Held {
                fd,
                name: spec.name.clone(),
                starter: path.to_string_lossy().into_owned(),
            })
        }
    }
}

fn show(a: &Addr) -> String {
    match a {
        Addr::Tcp { host, port } => format!("tcp:{}:{port}", host.as_deref().unwrap_or("")),
        Addr::Unix { path, .. } => format!("unix:{}", path.display()),
    }
}

fn socket(domain: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: socket with constant arguments.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn tcp_listener(a: &SocketAddr, backlog: i32) -> std::io::Result<OwnedFd> {
    let on: libc::c_int = 1;
    let off: libc::c_int = 0;
    let (fd, storage, len) = match a {
        SocketAddr::V4(v4) => {
            let fd = socket(libc::AF_INET)?;
            // SAFETY: sockaddr_in is plain old data.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = v4.port().to_be();
            sa.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            // SAFETY: copying a sockaddr_in into zeroed sockaddr_storage, which is larger.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            unsafe {
                std::ptr::copy_nonoverlapping(
                    &sa as *const _ as *const u8,
                    &mut st as *mut _ as *mut u8,
                    std::mem::size_of::<libc::sockaddr_in>(),
                )
            };
            (fd, st, std::mem::size_of::<libc::sockaddr_in>())
        }
        SocketAddr::V6(v6) => {
            let fd = socket(libc::AF_INET6)?;
            // Unspecified: IPv4 too (mapped); a given address: that one alone.
            let only: &libc::c_int = if v6.ip().is_unspecified() { &off } else { &on };
            // SAFETY: setsockopt with a valid int.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_V6ONLY,
                    (only as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            // SAFETY: sockaddr_in6 is plain old data.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = v6.port().to_be();
            sa.sin6_addr.s6_addr = v6.ip().octets();
            sa.sin6_scope_id = v6.scope_id();
            // SAFETY: as above.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            unsafe {
                std::ptr::copy_nonoverlapping(
                    &sa as *const _ as *const u8,
                    &mut st as *mut _ as *mut u8,
                    std::mem::size_of::<libc::sockaddr_in6>(),
                )
            };
            (fd, st, std::mem::size_of::<libc::sockaddr_in6>())
        }
    };
    // SO_REUSEADDR: a restart of sigshim itself finds the port free at once (TIME_WAIT). Not
    // SO_REUSEPORT: one socket, handed over.
    // SAFETY: setsockopt with a valid int; bind and listen with a valid address of `len`.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        check(libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        ))?;
        check(libc::listen(fd.as_raw_fd(), backlog))?;
    }
    Ok(fd)
}

fn unix_listener(path: &std::path::Path, backlog: i32) -> std::io::Result<OwnedFd> {
    // An absolute path (parse_spec): too long for sun_path is the only way to fail here.
    let (addr, len) = crate::sys::unix_addr(path.as_os_str().as_bytes())
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    // A socket file left by an earlier run is replaced, one that answers is not: another
    // process serves it.
    if crate::sys::is_socket(path) {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::from_raw_os_error(libc::EADDRINUSE));
        }
        let _ = std::fs::remove_file(path);
    }
    let fd = socket(libc::AF_UNIX)?;
    // SAFETY: bind and listen with a valid sockaddr_un of `len` bytes.
    unsafe {
        check(libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        ))?;
        check(libc::listen(fd.as_raw_fd(), backlog))?;
    }
    Ok(fd)
}

/// Descriptors to place in a child: (ours, where it goes).
pub type Placements = Vec<(RawFd, i32)>;
/// Variables to set in a child.
pub type Vars = Vec<(OsString, OsString)>;

/// What each generation gets: the descriptors to place (ours, at 3 + the inherited count +
/// i) and the variables that describe all of them, inherited ones first.
pub fn child_setup(
    held: &[Held],
    inherited: Option<std::ops::Range<i32>>,
    g: u32,
    me: i32,
) -> (Placements, Vars) {
    let first = inherited.as_ref().map_or(3, |r| r.end);
    let fds: Placements = held
        .iter()
        .enumerate()
        .map(|(i, h)| (h.fd.as_raw_fd(), first + i as i32))
        .collect();
    let mut names: Vec<String> = Vec::new();
    let mut starter: Vec<String> = Vec::new();
    if let Some(r) = &inherited {
        let given: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|v| v.split(':').map(String::from).collect())
            .unwrap_or_default();
        for (i, fd) in r.clone().enumerate() {
            names.push(given.get(i).cloned().unwrap_or_else(|| "unknown".into()));
            if let Some(s) = starter_name(fd) {
                starter.push(format!("{s}={fd}"));
            }
        }
    }
    for (h, &(_, fd)) in held.iter().zip(&fds) {
        names.push(h.name.clone());
        starter.push(format!("{}={fd}", h.starter));
    }
    let total = inherited.as_ref().map_or(0, |r| r.len()) + held.len();
    let mut env: Vars = Vec::new();
    if !held.is_empty() {
        env.push(("LISTEN_FDS".into(), total.to_string().into()));
        env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
        // Made the app's own PID in the child (inherit.rs).
        env.push(("LISTEN_PID".into(), me.to_string().into()));
    }
    if total > 0 {
        env.push(("SERVER_STARTER_PORT".into(), starter.join(";").into()));
        env.push(("SERVER_STARTER_GENERATION".into(), g.to_string().into()));
    }
    (fds, env)
}

/// What server-starter would call an inherited listening socket: `PORT` or `HOST:PORT` for
/// TCP, the path for a unix socket.
fn starter_name(fd: RawFd) -> Option<String> {
    // SAFETY: sockaddr_storage is plain old data; getsockname fills at most `len` bytes.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe {
        libc::getsockname(
            fd,
            (&mut st as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } != 0
    {
        return None;
    }
    match st.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel said it is a sockaddr_in.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((&st as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let port = u16::from_be(a.sin_port);
            Some(if ip.is_unspecified() {
                port.to_string()
            } else {
                format!("{ip}:{port}")
            })
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel said it is a sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&st as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(if ip.is_unspecified() {
                port.to_string()
            } else {
                format!("[{ip}]:{port}")
            })
        }
        libc::AF_UNIX => {
            // SAFETY: the kernel said it is a sockaddr_un.
            let a: libc::sockaddr_un =
                unsafe { std::ptr::read((&st as *const libc::sockaddr_storage).cast()) };
            let path: Vec<u8> = a
                .sun_path
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            (!path.is_empty()).then(|| String::from_utf8_lossy(&path).into_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_spec("tcp::8080").unwrap(),
            Spec {
                addr: Addr::Tcp {
                    host: None,
                    port: 8080
                },
                backlog: BACKLOG,
                name: "tcp-8080".into()
            }
        );
        let s = parse_spec("tcp:127.0.0.1:80,backlog=16,name=web").unwrap();
        assert_eq!(
            s.addr,
            Addr::Tcp {
                host: Some("127.0.0.1".into()),
                port: 80
            }
        );
        assert_eq!((s.backlog, s.name.as_str()), (16, "web"));
        assert_eq!(
            parse_spec("tcp:[::1]:80").unwrap().addr,
            Addr::Tcp {
                host: Some("::1".into()),
                port: 80
            }
        );
        let s = parse_spec("unix:/run/app.sock,mode=0660,owner=www-data").unwrap();
        assert_eq!(
            s.addr,
            Addr::Unix {
                path: "/run/app.sock".into(),
                mode: Some(0o660),
                owner: Some("www-data".into())
            }
        );
        assert_eq!(s.name, "app.sock");
        for bad in [
            "",
            "tcp:",
            "tcp:80",
            "tcp::0",
            "tcp::99999",
            "udp::80",
            "unix:rel.sock",
            "tcp::80,mode=0600",
            "tcp::80,backlog=0",
            "tcp::80,name=a:b",
            "tcp::80,nope=1",
            "unix:/x,mode=999",
            "tcp::80,backlog",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn setup_for_a_generation() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let held = vec![Held {
            fd: OwnedFd::from(l),
            name: "web".into(),
            starter: format!("127.0.0.1:{port}"),
        }];
        let (fds, env) = child_setup(&held, None, 3, 4242);
        assert_eq!(fds, vec![(held[0].fd.as_raw_fd(), 3)]);
        let get = |k: &str| {
            env.iter()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("LISTEN_FDS").as_deref(), Some("1"));
        assert_eq!(get("LISTEN_FDNAMES").as_deref(), Some("web"));
        assert_eq!(get("LISTEN_PID").as_deref(), Some("4242"));
        assert_eq!(
            get("SERVER_STARTER_PORT"),
            Some(format!("127.0.0.1:{port}=3"))
        );
        assert_eq!(get("SERVER_STARTER_GENERATION").as_deref(), Some("3"));
        assert_eq!(
            starter_name(held[0].fd.as_raw_fd()),
            Some(format!("127.0.0.1:{port}"))
        );
    }
}
