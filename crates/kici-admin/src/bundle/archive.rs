//! Writing a debug bundle's ZIP (deflate, every entry stamped with the bundle's time) and
//! reading one back. The ZIP time is built from the epoch time we already format, so no date
//! crate is needed. Blocking I/O: call it off the async runtime.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use kici_engine::api::format_timestamp;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write debug bundle `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write debug bundle `{}`", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
}

/// The ZIP (MS-DOS) time of an epoch-milliseconds UTC time; 1980-01-01 outside its range.
pub fn zip_time(epoch_ms: i64) -> DateTime {
    // `YYYY-MM-DDTHH:MM:SS.mmmZ`
    let text = format_timestamp(epoch_ms);
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(|digits| digits.parse::<u16>().ok());
    let parts = (
        field(0..4),
        field(5..7),
        field(8..10),
        field(11..13),
        field(14..16),
        field(17..19),
    );
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = parts else {
        return DateTime::default();
    };
    let narrow = |value: u16| u8::try_from(value).unwrap_or(u8::MAX);
    DateTime::from_date_and_time(
        year,
        narrow(month),
        narrow(day),
        narrow(hour),
        narrow(minute),
        narrow(second),
    )
    .unwrap_or_default()
}

/// Writes `entries` in order to `path` (through `<path>.partial`, so a failed write leaves no
/// half bundle under the final name) and returns the file's size in bytes.
pub fn write(path: &Path, entries: &[(String, Vec<u8>)], modified: DateTime) -> Result<u64, WriteError> {
    let io_error = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_error = |source| WriteError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = (|| {
        let mut zip = ZipWriter::new(File::create(&partial).map_err(io_error)?);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(modified)
            .unix_permissions(0o600);
        for (name, content) in entries {
            zip.start_file(name.as_str(), options).map_err(zip_error)?;
            zip.write_all(content).map_err(io_error)?;
        }
        zip.finish().map_err(zip_error)?.sync_all().map_err(io_error)?;
        std::fs::rename(&partial, path).map_err(io_error)?;
        std::fs::metadata(path).map(|metadata| metadata.len()).map_err(io_error)
    })();
    if result.is_err() {
        // Best effort: the error that matters is already in `result`.
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// An entry's content, `None` when the ZIP has no such entry.
pub fn read_entry<R: io::Read + io::Seek>(zip: &mut ZipArchive<R>, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut file = match zip.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(err) => return Err(io::Error::other(err)),
    };
    let mut content = Vec::new();
    file.read_to_end(&mut content)?;
    Ok(Some(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_times_come_from_the_epoch_time() {
        assert_eq!(zip_time(1_795_000_000_123).to_string(), "2026-11-18 11:06:40");
        assert_eq!(zip_time(0), DateTime::default());
    }

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.zip");
        let entries = vec![
            ("manifest.json".to_string(), b"{}".to_vec()),
            ("logs/a.log".to_string(), b"line\n".to_vec()),
        ];
        let size = write(&path, &entries, zip_time(1_795_000_000_123)).unwrap();
        assert_eq!(size, std::fs::metadata(&path).unwrap().len());
        assert!(!dir.path().join("b.zip.partial").exists());
        let mut zip = ZipArchive::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(read_entry(&mut zip, "logs/a.log").unwrap(), Some(b"line\n".to_vec()));
        assert_eq!(read_entry(&mut zip, "nope").unwrap(), None);
        assert_eq!(
            zip.by_name("manifest.json")
                .unwrap()
                .last_modified()
                .unwrap()
                .to_string(),
            "2026-11-18 11:06:40"
        );
    }
}
