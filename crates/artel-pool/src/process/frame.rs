//! The frames between a process pool and its children: a 4-byte big-endian length, then
//! that many bytes of JSON. A frame over [`MAX_FRAME`] is refused rather than allocated.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// The largest frame either side accepts (64 MiB).
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// A call the parent sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    /// The registered function's name.
    pub(crate) task: String,
    /// Its arguments, as JSON.
    pub(crate) args: Value,
}

/// A child's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The function's value.
    Ok(Value),
    /// The function's error, or why it could not run (unknown name, panic).
    Err(String),
}

fn too_large(len: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"))
}

/// One frame: the length, then the JSON.
pub(crate) fn encode(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).ok().filter(|n| (*n as usize) <= MAX_FRAME).ok_or(too_large(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one frame (the parent's side).
pub(crate) async fn read<T: for<'de> Deserialize<'de>>(stream: &mut (impl AsyncReadExt + Unpin)) -> io::Result<T> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(too_large(len));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    decode(&body)
}

/// Writes one frame (the child's side, blocking).
pub(crate) fn write_blocking(stream: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    stream.write_all(&encode(value)?)
}

/// Reads one frame (the child's side, blocking); `None` at a clean end of stream.
pub(crate) fn read_blocking<T: for<'de> Deserialize<'de>>(stream: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0; 4];
    match stream.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(too_large(len));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_an_oversized_length_is_refused_unread() {
        let mut buffer = Vec::new();
        write_blocking(&mut buffer, &Request { task: "fib".into(), args: serde_json::json!([27]) }).expect("write");
        let request: Request = read_blocking(&mut buffer.as_slice()).expect("read").expect("a frame");
        assert_eq!((request.task.as_str(), request.args), ("fib", serde_json::json!([27])));
        assert!(read_blocking::<Request>(&mut [].as_slice()).expect("clean end").is_none());
        let huge = (u32::MAX).to_be_bytes();
        let err = read_blocking::<Request>(&mut huge.as_slice()).expect_err("refused");
        assert!(err.to_string().contains("exceeds"), "{err}");
    }
}
