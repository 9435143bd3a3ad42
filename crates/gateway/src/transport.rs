//! TLS over TCP, driven through rustls's unbuffered API.
//!
//! The connection task owns both byte buffers, so they exist only while bytes are in flight: received bytes are
//! kept only while they form a partial TLS record, and encrypted bytes only until the socket takes them. An idle
//! connection holds neither. (rustls's buffered API keeps a receive buffer of at least 4 KiB for the whole life of
//! every connection, and the memory of an idle connection is what limits how many a gateway holds.)
//!
//! rustls's state machine decides everything about the protocol; this module only moves bytes between it and the
//! socket. Output is sent in the order it was produced, so encoded handshake records can be marked transmitted
//! as soon as they are queued: nothing queued later can overtake them.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{Acceptor, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

use crate::tls::{ALPN_MQTT_CA, TlsConfigs};

/// Bytes read from the socket at once: a whole TLS record (16 KiB of plaintext plus its overhead).
const READ_SIZE: usize = 17 * 1024;
/// Bytes written from the front of the send buffer after which they are dropped from it.
const COMPACT_AFTER: usize = 64 * 1024;
/// First guess for an encoded handshake record; rustls says how much it needs when that is too small.
const ENCODE_GUESS: usize = 2048;

/// Why a TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("connection closed during the TLS handshake")]
    ClosedInHandshake,
}

/// What the server learnt from the ClientHello.
pub struct Hello {
    pub sni: Option<String>,
}

/// One established (or establishing) TLS connection.
pub struct Transport {
    tcp: TcpStream,
    tls: UnbufferedServerConnection,
    /// Received bytes rustls has not consumed yet: at most a partial record between reads.
    incoming: Vec<u8>,
    /// Encrypted bytes for the socket; `outgoing[sent..]` is still to be written.
    outgoing: Vec<u8>,
    sent: usize,
    /// The client closed its side (close_notify or end of stream): nothing more will be read.
    read_closed: bool,
    /// A close_notify has been queued: nothing more is encrypted.
    write_closed: bool,
}

/// What [`Transport::pump`] does once application data may be sent.
enum Out<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// Where [`Transport::pump`] stopped.
enum Progress {
    /// The handshake needs more bytes from the client.
    Handshaking,
    /// Application data may be sent; whatever arrived has been decrypted.
    Ready,
    /// Both sides sent close_notify.
    Closed,
}

impl Transport {
    /// Performs the TLS handshake on a fresh TCP connection. The server configuration is chosen from the
    /// ClientHello (ALPN). Returns the transport, what the ClientHello said, and any application data the client
    /// sent right behind its last handshake flight.
    pub async fn accept(
        tcp: TcpStream,
        configs: &TlsConfigs,
    ) -> Result<(Transport, Hello, Vec<u8>), TransportError> {
        let mut incoming = Vec::new();
        let (config, hello) = read_client_hello(&tcp, &mut incoming, configs).await?;
        let mut t = Transport {
            tcp,
            tls: UnbufferedServerConnection::new(config)?,
            incoming,
            outgoing: Vec::new(),
            sent: 0,
            read_closed: false,
            write_closed: false,
        };
        let mut plain = Vec::new();
        loop {
            let progress = t.pump(Out::Nothing, &mut plain);
            // Whatever happened, the client gets what rustls queued (the next flight or an alert).
            t.write_all().await?;
            match progress? {
                Progress::Ready => return Ok((t, hello, plain)),
                Progress::Closed => return Err(TransportError::ClosedInHandshake),
                Progress::Handshaking => {
                    if read(&t.tcp, &mut t.incoming).await? == 0 {
                        return Err(TransportError::ClosedInHandshake);
                    }
                }
            }
        }
    }

    /// The client's certificate chain, leaf first.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls.peer_certificates()
    }

    /// False once the client closed its side: no more input will come.
    pub fn may_read(&self) -> bool {
        !self.read_closed
    }

    /// Encrypted bytes waiting for the socket.
    pub fn unsent(&self) -> usize {
        self.outgoing.len() - self.sent
    }

    /// Waits until the socket has bytes to read (cancel-safe).
    pub async fn readable(&self) -> io::Result<()> {
        self.tcp.readable().await
    }

    /// Waits until the socket can take more bytes (cancel-safe).
    pub async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }

    /// Reads what the socket has, without waiting, and decrypts it into `plain`. At the end of the stream or on
    /// the client's close_notify, [`Self::may_read`] turns false.
    pub fn try_receive(&mut self, plain: &mut Vec<u8>) -> Result<(), TransportError> {
        match try_read(&self.tcp, &mut self.incoming) {
            Ok(0) => {
                self.read_closed = true;
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if let Progress::Closed = self.pump(Out::Nothing, plain)? {
            self.read_closed = true;
        }
        Ok(())
    }

    /// Encrypts `data` for the client; [`Self::try_send`] and [`Self::close`] write it out.
    pub fn send(&mut self, data: &[u8]) -> Result<(), TransportError> {
        if self.write_closed {
            return Ok(());
        }
        // Input is decrypted as it arrives, so no complete record is waiting and this decrypts nothing.
        let mut plain = Vec::new();
        self.pump(Out::Data(data), &mut plain)?;
        debug_assert!(plain.is_empty());
        Ok(())
    }

    /// Writes as much as the socket takes without waiting.
    pub fn try_send(&mut self) -> io::Result<()> {
        while self.unsent() > 0 {
            match self.tcp.try_write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A client that keeps up only just would otherwise never let the buffer empty, and what it
                    // took would pile up in front.
                    if self.sent >= COMPACT_AFTER {
                        self.outgoing.drain(..self.sent);
                        self.sent = 0;
                    }
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        // Nothing left in flight: hold no buffer.
        self.outgoing = Vec::new();
        self.sent = 0;
        Ok(())
    }

    /// Sends a close_notify behind what is queued, writes everything out and shuts the socket down.
    pub async fn close(&mut self) -> io::Result<()> {
        if !self.write_closed {
            let mut plain = Vec::new();
            // After a TLS error there is nothing to close cleanly (the alert is already queued).
            let _ = self.pump(Out::CloseNotify, &mut plain);
            self.write_closed = true;
        }
        self.write_all().await?;
        tokio::io::AsyncWriteExt::shutdown(&mut self.tcp).await
    }

    async fn write_all(&mut self) -> io::Result<()> {
        let unsent = self.outgoing.get(self.sent..).unwrap_or_default();
        write_all(&self.tcp, unsent).await?;
        self.outgoing = Vec::new();
        self.sent = 0;
        Ok(())
    }

    /// Runs rustls until it waits for the client or may send application data: queues what it wants sent,
    /// decrypts what arrived into `plain`, and does `out` once application data may be sent. On a TLS error, the
    /// alert rustls prepared is queued before the error is returned.
    fn pump(&mut self, mut out: Out<'_>, plain: &mut Vec<u8>) -> Result<Progress, TransportError> {
        let progress = loop {
            let status = self.tls.process_tls_records(&mut self.incoming);
            let mut discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(e) => {
                    drop_front(&mut self.incoming, discard);
                    self.queue_alert();
                    return Err(e.into());
                }
            };
            let stop = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let record = record?;
                        discard += record.discard;
                        plain.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    grow_into(&mut self.outgoing, ENCODE_GUESS, |buf| {
                        encoded(data.encode(buf))
                    })?;
                    None
                }
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    None
                }
                ConnectionState::WriteTraffic(mut w) => {
                    match std::mem::replace(&mut out, Out::Nothing) {
                        Out::Nothing => {}
                        Out::Data(data) => {
                            // Records of at most 16 KiB: header, tag and content type take under 64 bytes each.
                            let guess = data.len() + (data.len() / 16384 + 1) * 64;
                            grow_into(&mut self.outgoing, guess, |buf| {
                                encrypted(w.encrypt(data, buf))
                            })?;
                        }
                        Out::CloseNotify => {
                            grow_into(&mut self.outgoing, 64, |buf| {
                                encrypted(w.queue_close_notify(buf))
                            })?;
                        }
                    }
                    Some(Progress::Ready)
                }
                ConnectionState::PeerClosed => {
                    self.read_closed = true;
                    None
                }
                ConnectionState::Closed => Some(Progress::Closed),
                ConnectionState::BlockedHandshake => Some(Progress::Handshaking),
                // Early data is not enabled (`max_early_data_size` is 0), so rustls never yields it; a state added
                // by a later rustls is nothing this gateway knows how to handle.
                _ => {
                    drop_front(&mut self.incoming, discard);
                    return Err(rustls::Error::General("unexpected TLS state".into()).into());
                }
            };
            drop_front(&mut self.incoming, discard);
            if let Some(p) = stop {
                break p;
            }
        };
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        Ok(progress)
    }

    /// After an error: queues the alert rustls prepared for the client, if any.
    fn queue_alert(&mut self) {
        // An alert is one record; the loop only guards against a rustls that keeps yielding.
        for _ in 0..4 {
            // The same buffer as always: rustls's handshake deframer keeps positions in it.
            match self.tls.process_tls_records(&mut self.incoming).state {
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    let _ = grow_into(&mut self.outgoing, 64, |buf| encoded(data.encode(buf)));
                }
                Ok(ConnectionState::TransmitTlsData(data)) => data.done(),
                _ => return,
            }
        }
    }
}

/// Reads until rustls's acceptor has parsed the ClientHello, keeping every byte in `incoming` for the real
/// connection, which parses the hello again under the configuration chosen here. (The unbuffered API has no
/// acceptor, and the configuration depends on the ALPN the client offers.)
async fn read_client_hello(
    tcp: &TcpStream,
    incoming: &mut Vec<u8>,
    configs: &TlsConfigs,
) -> Result<(Arc<ServerConfig>, Hello), TransportError> {
    let mut acceptor = Acceptor::default();
    let mut fed = 0;
    loop {
        if read(tcp, incoming).await? == 0 {
            return Err(TransportError::ClosedInHandshake);
        }
        while let Some(mut rest) = incoming.get(fed..).filter(|r| !r.is_empty()) {
            match acceptor.read_tls(&mut rest)? {
                0 => return Err(io::Error::other("ClientHello too large").into()),
                n => fed += n,
            }
        }
        match acceptor.accept() {
            Ok(None) => {}
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let wants_aws_alpn = hello
                    .alpn()
                    .is_some_and(|mut protocols| protocols.any(|p| p == ALPN_MQTT_CA));
                let config = if wants_aws_alpn {
                    configs.alpn.clone()
                } else {
                    configs.plain.clone()
                };
                let sni = hello.server_name().map(str::to_owned);
                return Ok((config, Hello { sni }));
            }
            Err((e, mut alert)) => {
                let mut bytes = Vec::new();
                let _ = alert.write_all(&mut bytes);
                let _ = write_all(tcp, &bytes).await;
                return Err(e.into());
            }
        }
    }
}

/// Reads once (waiting for the socket) into `incoming`; 0 at the end of the stream.
async fn read(tcp: &TcpStream, incoming: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        tcp.readable().await?;
        match try_read(tcp, incoming) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return r,
        }
    }
}

/// Reads what the socket has into `incoming`. Room for a whole record is allocated for the read; an empty buffer
/// is released again.
fn try_read(tcp: &TcpStream, incoming: &mut Vec<u8>) -> io::Result<usize> {
    incoming.reserve(READ_SIZE.saturating_sub(incoming.len()).max(1024));
    let r = tcp.try_read_buf(incoming);
    if incoming.is_empty() {
        *incoming = Vec::new();
    }
    r
}

async fn write_all(tcp: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        tcp.writable().await?;
        match tcp.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the first `n` bytes of `buf`.
fn drop_front(buf: &mut Vec<u8>, n: usize) {
    if n > 0 {
        buf.drain(..n.min(buf.len()));
    }
}

fn encoded(r: Result<usize, EncodeError>) -> Result<usize, GrowError> {
    match r {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(e)) => Err(GrowError::Room(e)),
        // Each record is encoded once; nothing more to add.
        Err(EncodeError::AlreadyEncoded) => Ok(0),
    }
}

fn encrypted(r: Result<usize, EncryptError>) -> Result<usize, GrowError> {
    match r {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(e)) => Err(GrowError::Room(e)),
        Err(EncryptError::EncryptExhausted) => Err(GrowError::Exhausted),
    }
}

/// Why [`grow_into`]'s writer could not write.
enum GrowError {
    /// It needs more room.
    Room(InsufficientSizeError),
    /// The record layer's sequence numbers are used up.
    Exhausted,
}

/// Appends what `write` produces to `out`, giving it `guess` bytes of room first and, if that is too little, as
/// many as it asks for.
fn grow_into(
    out: &mut Vec<u8>,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, GrowError>,
) -> Result<(), TransportError> {
    let start = out.len();
    let mut room = guess;
    loop {
        out.resize(start + room, 0);
        match write(out.get_mut(start..).unwrap_or_default()) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(GrowError::Room(e)) if e.required_size > room => room = e.required_size,
            Err(e) => {
                out.truncate(start);
                return Err(match e {
                    GrowError::Exhausted => rustls::Error::EncryptError,
                    GrowError::Room(_) => rustls::Error::General("TLS output sizing".into()),
                }
                .into());
            }
        }
    }
}
