//! Zip archives for seeding input artifacts and checking outputs, made with the `zip` crate
//! (an implementation independent of pipeline-ext's own reader and writer).

use std::io::Write;
use std::path::Path;

/// The folder's files as a zip archive in memory, in a stable (sorted) order.
pub fn zip_folder(folder: &Path) -> std::io::Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(folder, folder, &mut files)?;
    files.sort();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (name, path) in files {
        writer
            .start_file(name, options)
            .map_err(std::io::Error::other)?;
        writer.write_all(&std::fs::read(path)?)?;
    }
    Ok(writer.finish().map_err(std::io::Error::other)?.into_inner())
}

fn collect(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, std::path::PathBuf)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).map_err(std::io::Error::other)?;
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

/// Files (path, bytes) as a deflated zip archive, in the order given.
pub fn zip_files(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .map_err(std::io::Error::other)?;
        writer.write_all(data)?;
    }
    Ok(writer.finish().map_err(std::io::Error::other)?.into_inner())
}

/// Every entry of a zip archive as (path, bytes), in archive order.
pub fn unzip(bytes: Vec<u8>) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(std::io::Error::other)?;
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).map_err(std::io::Error::other)?;
            let mut data = Vec::new();
            file.read_to_end(&mut data)?;
            Ok((file.name().to_string(), data))
        })
        .collect()
}
