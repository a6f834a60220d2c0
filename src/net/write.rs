//! Writing a frame given as several buffers: one vectored write where the socket takes
//! it all, resumed where a partial write stopped.

use std::io::IoSlice;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes every buffer in order with vectored writes, resuming after partial writes.
/// Empty buffers are skipped: a write of nothing returns 0, which would read as a
/// closed socket.
pub async fn write_all_parts<B: AsRef<[u8]>>(
    write: &mut (impl AsyncWrite + Unpin),
    parts: &[B],
) -> std::io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < parts.len() {
        if parts[index].as_ref().len() == offset {
            (index, offset) = (index + 1, 0);
            continue;
        }
        let slices: Vec<IoSlice<'_>> = std::iter::once(&parts[index].as_ref()[offset..])
            .chain(parts[index + 1..].iter().map(|p| p.as_ref()))
            .take(64)
            .map(IoSlice::new)
            .collect();
        let mut written = write.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while index < parts.len() && written >= parts[index].as_ref().len() - offset {
            written -= parts[index].as_ref().len() - offset;
            index += 1;
            offset = 0;
        }
        offset += written;
    }
    write.flush().await
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// The rest of an answer passed on whole is an empty buffer: writing it is no error.
    #[tokio::test]
    async fn empty_buffers_are_skipped_wherever_they_stand() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        write_all_parts(&mut near, &[&b""[..]]).await.unwrap();
        write_all_parts(&mut near, &[&b""[..], b"ab", b"", b"c", b""])
            .await
            .unwrap();
        drop(near);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abc");
    }
}
