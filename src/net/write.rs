//! Writing a frame given as several buffers: one vectored write where the socket takes
//! it all, resumed where a partial write stopped.

use std::io::IoSlice;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes every buffer in order with vectored writes, resuming after partial writes.
pub async fn write_all_parts<B: AsRef<[u8]>>(
    write: &mut (impl AsyncWrite + Unpin),
    parts: &[B],
) -> std::io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < parts.len() {
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
