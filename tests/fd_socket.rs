//! Sockets across a checkpoint (tests/programs/fd_socket.c does the work and says what it
//! found): listening TCP and unix sockets accept again, a TCP connection comes back closed by
//! its peer and the program connects again, a socket pair keeps its queued bytes, and a port
//! taken meanwhile ends the restart before anything changed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use ckpt_tests::*;

const FD_SOCKET_C: &str = include_str!("programs/fd_socket.c");

fn build(dir: &TempDir) -> PathBuf {
    compile_c(dir, "fd_socket", FD_SOCKET_C, &[])
}

/// Restarts `run`'s checkpoint, says "go", then lets `talk` reach the restarted program;
/// waits for its exit: (lines, stderr), expecting status 0.
fn restart_and_talk(run: &FdRun, talk: impl FnOnce(&mut Proc)) -> (Vec<String>, String) {
    let command = restart_command(run.dir, &run.image());
    let (mut proc, mut stdin) = Proc::spawn_with_stdin(run.wrap(command), "fd_socket.ckpt");
    writeln!(stdin, "go").expect("say go");
    talk(&mut proc);
    let status = proc.wait_exit(TIMEOUT);
    proc.rest_of_output();
    let (lines, stderr) = (proc.seen().to_vec(), proc.stderr());
    assert!(
        status.success(),
        "the restart exited with {}; it printed {lines:?}, stderr {stderr:?}",
        describe_status(status)
    );
    (lines, stderr)
}

/// One line to a listening socket and its answer.
fn ask(mut stream: impl Read + Write, line: &str) -> String {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .expect("send");
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .expect("read the answer");
    answer
}

fn port_of(lines: &[String]) -> u16 {
    value_after(lines, "port ").parse().expect("a port number")
}

fn listening_tcp_accepts(run: FdRun) {
    let before = run.checkpoint(&["tcp-listen"], &[]);
    let port = port_of(&before);
    let said = ckpt_info(run.dir, &run.image());
    assert!(
        said.contains(&format!(
            "TCP listening on 127.0.0.1:{port} again (backlog 7;"
        )),
        "{said}"
    );
    let (after, stderr) = restart_and_talk(&run, |proc| {
        proc.wait_line("accepting");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect after restart");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(ask(stream, "tcp"), "hello tcp\n");
    });
    expect_lines(
        &after,
        &["accepting", "answered tcp", "done"],
        "after the restart",
    );
    assert!(stderr.is_empty(), "the restart said {stderr:?}");
}

/// A connection left waiting in the listen queue at the checkpoint is lost, and the restart
/// says so in one line; the socket accepts new ones.
#[test]
fn connection_waiting_in_the_listen_queue_is_said_lost() {
    let dir = TempDir::new("fd-tcp-waiting");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let (mut proc, _stdin) = run.start(&["tcp-listen"], &[]);
    let port = port_of(proc.seen());
    // Connected (the kernel completes it), never accepted before the checkpoint.
    let waiting = TcpStream::connect(("127.0.0.1", port)).expect("connect before");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, &run.image());
    drop(waiting);
    let (after, stderr) = restart_and_talk(&run, |proc| {
        proc.wait_line("accepting");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect after restart");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(ask(stream, "tcp"), "hello tcp\n");
    });
    expect_lines(
        &after,
        &["accepting", "answered tcp", "done"],
        "after the restart",
    );
    assert!(
        stderr.ends_with(
            "') listens again; the 1 connection(s) waiting to be accepted at the checkpoint \
             are lost\n"
        ) && stderr.lines().count() == 1,
        "the restart said {stderr:?}"
    );
}

/// A listening TCP socket on an ephemeral port accepts a connection after the restart.
#[test]
fn listening_tcp_socket_accepts_again() {
    let dir = TempDir::new("fd-tcp-listen");
    let program = build(&dir);
    listening_tcp_accepts(FdRun::new(&dir, &program));
}

/// The same as nobody: nothing here needs a privilege.
#[test]
fn listening_tcp_socket_accepts_again_as_nobody() {
    let dir = TempDir::new("fd-tcp-listen-nobody");
    let program = build(&dir);
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    listening_tcp_accepts(FdRun {
        ckpt: Some(&ckpt),
        ..FdRun::new(&dir, &program)
    });
}

/// A listening unix socket: its path, left behind by the old process, is bound again.
#[test]
fn listening_unix_socket_accepts_again() {
    let dir = TempDir::new("fd-unix-listen");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let path = dir.join("s.sock");
    let before = run.checkpoint(&["unix-listen", path.to_str().unwrap()], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    assert!(path.exists(), "the old process's socket file is there");
    let (after, stderr) = restart_and_talk(&run, |proc| {
        proc.wait_line("accepting");
        let stream = UnixStream::connect(&path).expect("connect after restart");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(ask(stream, "unix"), "hello unix\n");
    });
    expect_lines(
        &after,
        &["accepting", "answered unix", "done"],
        "after the restart",
    );
    assert!(stderr.is_empty(), "the restart said {stderr:?}");
}

/// A unix path something listens on is not taken over: the restart refuses, naming it.
#[test]
fn unix_path_in_use_is_refused() {
    let dir = TempDir::new("fd-unix-taken");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let path = dir.join("s.sock");
    run.checkpoint(&["unix-listen", path.to_str().unwrap()], &[]);
    std::fs::remove_file(&path).unwrap();
    let _other = std::os::unix::net::UnixListener::bind(&path).expect("bind it elsewhere");
    let (status, lines, stderr) = run.restart();
    assert!(!status.success() && lines.is_empty(), "{lines:?} {stderr}");
    let said: Vec<&str> = stderr.lines().collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains(&format!("{} is in use", path.display()))
            && said[0].contains("nothing was restored"),
        "{stderr}"
    );
}

/// A port taken between the checkpoint and the restart ends the restart in one line naming
/// the address, with a non-zero status and nothing of the program run.
#[test]
fn taken_port_is_refused_before_anything_changes() {
    let dir = TempDir::new("fd-tcp-taken");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let port = port_of(&run.checkpoint(&["tcp-listen"], &[]));
    let _taken = TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let (status, lines, stderr) = run.restart();
    assert!(!status.success(), "the restart went on: {lines:?} {stderr}");
    assert!(lines.is_empty(), "the program ran: {lines:?}");
    let said: Vec<&str> = stderr.lines().collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains(&format!(
            "cannot be made again: 127.0.0.1:{port} is in use; nothing was restored"
        )),
        "{stderr}"
    );
}

/// A TCP connection to another process comes back closed by its peer: the bytes that had
/// arrived, then end-of-file and EPIPE (never EBADF), still non-blocking; the program
/// connects again.
#[test]
fn connected_tcp_socket_reads_eof_and_reconnects() {
    let dir = TempDir::new("fd-tcp-connected");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let server = TcpListener::bind(("127.0.0.1", 0)).expect("listen");
    let port = server.local_addr().unwrap().port();
    let accepting = {
        let server = server.try_clone().unwrap();
        std::thread::spawn(move || {
            let (mut first, _) = server.accept().expect("accept");
            first.write_all(b"queued\n").expect("send");
            first
        })
    };
    let before = run.checkpoint(&["tcp-connected", &port.to_string()], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let first = accepting.join().unwrap();
    let said = ckpt_info(&dir, &run.image());
    assert!(
        said.contains(&format!(
            "peer-closed (was TCP connected to 127.0.0.1:{port}); reads 7 queued byte(s) then end-of-file"
        )),
        "{said}"
    );
    let (after, stderr) = restart_and_talk(&run, |_| {
        let (again, _) = server.accept().expect("accept the new connection");
        again.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut line = String::new();
        BufReader::new(again).read_line(&mut line).unwrap();
        assert_eq!(line, "again\n");
    });
    drop(first);
    expect_lines(
        &after,
        &["read queued", "eof", "write: EPIPE", "reconnected", "done"],
        "after the restart",
    );
    assert_eq!(
        stderr,
        format!(
            "ckpt restart: connections that came back closed by their peer (the program sees \
             end-of-file and may reconnect): fd 3 (127.0.0.1:{port})\n"
        )
    );
}

/// A unix stream connection to another process comes back closed by its peer the same way.
#[test]
fn connected_unix_socket_reads_eof_and_reconnects() {
    let dir = TempDir::new("fd-unix-connected");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let path = dir.join("server.sock");
    let server = std::os::unix::net::UnixListener::bind(&path).expect("listen");
    let accepting = {
        let server = server.try_clone().unwrap();
        std::thread::spawn(move || {
            let (mut first, _) = server.accept().expect("accept");
            first.write_all(b"queued\n").expect("send");
            first
        })
    };
    let before = run.checkpoint(&["unix-connected", path.to_str().unwrap()], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let first = accepting.join().unwrap();
    let said = ckpt_info(&dir, &run.image());
    assert!(
        said.contains(&format!(
            "peer-closed (was unix stream connected to {}); reads 7 queued byte(s) then end-of-file",
            path.display()
        )),
        "{said}"
    );
    let (after, stderr) = restart_and_talk(&run, |_| {
        let (again, _) = server.accept().expect("accept the new connection");
        again.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut line = String::new();
        BufReader::new(again).read_line(&mut line).unwrap();
        assert_eq!(line, "again\n");
    });
    drop(first);
    expect_lines(
        &after,
        &["read queued", "eof", "write: EPIPE", "reconnected", "done"],
        "after the restart",
    );
    assert!(
        stderr.ends_with(&format!(": fd 3 ({})\n", path.display())) && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// A stream socket pair with 13 bytes queued each way and a datagram pair with five
/// messages queued (one empty) give them back, boundaries kept, and go on working.
#[test]
fn socket_pair_gives_back_its_queued_bytes() {
    let dir = TempDir::new("fd-socketpair");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["pair"], &[]);
    let said = ckpt_info(&dir, &run.image());
    assert!(
        said.contains("unix stream socket pair with the socket of inode")
            && said.contains("with 13 queued byte(s)")
            && said.contains("with 5 queued message(s)"),
        "{said}"
    );
    run.restart_silently(
        &[
            "stream a->b 13 bytes",
            "stream b->a 13 bytes",
            "stream empty: Resource temporarily unavailable",
            "message 3 bytes",
            "message 3 bytes",
            "message 5 bytes",
            "message 0 bytes",
            "message 4 bytes",
            "dgram empty: Resource temporarily unavailable",
            "stream more 4 bytes",
            "dgram back 4 bytes",
            "done",
        ],
        "after the restart",
    );
}

/// A bound UDP socket and one connected to it, a listening TCP socket on [::1] and a
/// listening unix socket at an abstract name all work after the restart.
#[test]
fn udp_ipv6_and_abstract_sockets_work_again() {
    use std::os::linux::net::SocketAddrExt;
    let dir = TempDir::new("fd-socket-others");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["others"], &[]);
    if before.iter().any(|l| l.starts_with("no ipv6")) {
        skip(Skip::CannotHere, "no IPv6 loopback here");
        return;
    }
    let port6: u16 = value_after(&before, "port6 ")
        .parse()
        .expect("a port number");
    let name = value_after(&before, "abstract ");
    let said = ckpt_info(&dir, &run.image());
    for text in [
        "UDP bound to 127.0.0.1:".to_owned(),
        "UDP connected to 127.0.0.1:".to_owned(),
        format!("TCP6 listening on [::1]:{port6} again (backlog 4;"),
        format!("unix stream listening on @{name} again (backlog 2;"),
    ] {
        assert!(said.contains(&text), "no {text:?} in {said}");
    }
    let (after, stderr) = restart_and_talk(&run, |proc| {
        proc.wait_line("accepting");
        let v6 = TcpStream::connect(("::1", port6)).expect("connect to [::1]");
        v6.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(ask(v6, "six"), "hello six\n");
        proc.wait_line("accepting");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abs = UnixStream::connect_addr(&addr).expect("connect to the abstract name");
        abs.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(ask(abs, "abstract"), "hello abstract\n");
    });
    expect_lines(
        &after,
        &[
            "udp ping",
            "accepting",
            "answered six",
            "accepting",
            "answered abstract",
            "done",
        ],
        "after the restart",
    );
    assert!(stderr.is_empty(), "the restart said {stderr:?}");
}

/// Datagrams queued on a UDP socket at the checkpoint cannot be given back (their senders
/// cannot be made again): `ckpt info` and the restart say how many are lost, in one line,
/// and the socket receives new ones.
#[test]
fn udp_datagrams_queued_at_the_checkpoint_are_said_lost() {
    let dir = TempDir::new("fd-udp-queued");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["udp-queued"], &[]);
    let fd = value_after(&before, "queued ");
    let said = ckpt_info(&dir, &run.image());
    assert!(
        said.contains("; the 2 datagrams queued at the checkpoint are lost"),
        "ckpt info: {said}"
    );
    let (after, stderr) = restart_and_talk(&run, |_| {});
    expect_lines(&after, &["udp ping", "done"], "after the restart");
    assert!(
        stderr.starts_with(&format!("ckpt restart: fd {fd} ("))
            && stderr.ends_with(
                "is bound again; the 2 datagram(s) queued for it at the checkpoint are lost\n"
            )
            && stderr.lines().count() == 1,
        "the restart said {stderr:?}"
    );
}

/// The checkpoint of a program in `mode` fails in one line that names fd `fd` and says `why`, leaves
/// no file, and the program goes on to print `rest`.
fn refused(mode: &str, fd: u32, why: &str, rest: &[&str]) {
    let dir = TempDir::new(&format!("fd-socket-{mode}"));
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let (mut proc, mut stdin) = run.start(&[mode], &[]);
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr("failed", TIMEOUT);
    let stderr = proc.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("failed"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("' failed: fd {fd} (socket:["))
            && line.contains(why)
            && line.ends_with("the program continues"),
        "{line:?}"
    );
    assert!(!run.image().exists(), "a failed checkpoint left a file");
    writeln!(stdin, "go").expect("write go");
    let status = proc.wait_exit_only(TIMEOUT);
    assert!(status.success(), "{}", describe_status(status));
    proc.rest_of_output();
    let mut expected = vec!["ready"];
    expected.extend_from_slice(rest);
    expect_lines(proc.seen(), &expected, "the program");
}

/// A descriptor in flight on a socket pair refuses the checkpoint (a restart could not send
/// it again), and the peek that found it took nothing: the program still receives it.
#[test]
fn descriptor_in_flight_refuses_the_checkpoint() {
    refused(
        "rights",
        4,
        "descriptors are in flight on it (SCM_RIGHTS)",
        &["got a descriptor", "done"],
    );
}

/// A netlink socket is not saved: the checkpoint refuses it, naming it.
#[test]
fn netlink_socket_refuses_the_checkpoint() {
    refused("netlink", 3, "cannot be checkpointed yet", &["done"]);
}

/// A connection that ended (the peer reset it) while the program keeps its descriptor sits
/// in the closed state bound to the listener's port: it comes back closed, not bound again
/// (which would collide with the listener, as `python3 -m http.server` showed), and the
/// listener accepts again.
#[test]
fn ended_connection_comes_back_closed_beside_its_listener() {
    let dir = TempDir::new("fd-tcp-ended");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let (mut proc, _stdin) =
        Proc::spawn_with_stdin(ckpt_command(&dir, &program, &["ended"]), "fd_socket ended");
    let port_line = proc.wait_line_matching("port", TIMEOUT, |l| l.starts_with("port "));
    let port = port_of(&[port_line]);
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // SO_LINGER 0: the close resets the connection.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct from a live local, on an open socket.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER");
    drop(stream);
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, &run.image());

    let (after, stderr) = restart_and_talk(&run, |proc| {
        proc.wait_line("accepting");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect after restart");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(ask(stream, "again"), "hello again\n");
    });
    expect_lines(
        &after,
        &["ended read 0", "accepting", "answered again", "done"],
        "after the restart",
    );
    assert!(
        stderr.lines().count() <= 1 && !stderr.contains("in use"),
        "the restart said {stderr:?}"
    );
}
