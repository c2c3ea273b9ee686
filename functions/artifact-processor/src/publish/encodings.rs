//! Compressed representations of a file: `x.br`/`x.gz` found beside `x` in the artifact
//! (`precompressed`), and brotli/gzip made at publish time (`compress`). Either is stored
//! with `Content-Encoding` and the `Content-Type` of the plain name, side by side with the
//! plain file or in its place (`EncodedLayout`).

use crate::params::{CompressLevels, EncodedLayout};
use std::collections::HashSet;
use std::io::Write;

/// A content coding S3 stores and browsers accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Encoding {
    Br,
    Gzip,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Br, Encoding::Gzip];

    /// `Content-Encoding`.
    pub fn header(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The file name suffix of a variant.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Gzip => ".gz",
        }
    }

    fn of_layout(layout: EncodedLayout) -> Option<Self> {
        match layout {
            EncodedLayout::SideBySide => None,
            EncodedLayout::Br => Some(Encoding::Br),
            EncodedLayout::Gzip => Some(Encoding::Gzip),
        }
    }

    /// The level `levels` sets for this encoding.
    pub fn level(self, levels: &CompressLevels) -> u32 {
        match self {
            Encoding::Br => levels.br,
            Encoding::Gzip => levels.gzip,
        }
    }
}

/// What the publish does with one file of the artifact.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Published under its own name, as is.
    Plain,
    /// A variant of `plain` in the artifact, published under its own name with `encoding`.
    VariantBeside { plain: String, encoding: Encoding },
    /// A variant of `plain` in the artifact, published under the plain name with `encoding`.
    VariantInPlace { plain: String, encoding: Encoding },
    /// Not published under its own name: a variant stands in its place.
    Replaced,
    /// A variant of a file whose other variant stands in its place: not published.
    Folded,
}

/// The variant of `name` in `names`, if `name` is one: `x.br` or `x.gz` beside `x`.
fn variant_of<'a>(name: &'a str, names: &HashSet<&str>) -> Option<(&'a str, Encoding)> {
    Encoding::ALL.into_iter().find_map(|encoding| {
        let plain = name.strip_suffix(encoding.suffix())?;
        (!plain.is_empty() && !plain.ends_with('/') && names.contains(plain))
            .then_some((plain, encoding))
    })
}

/// The role of `name` among `names` (every file of the artifact) under `layout`.
pub(super) fn role_of(name: &str, names: &HashSet<&str>, layout: EncodedLayout) -> Role {
    let in_place = Encoding::of_layout(layout);
    if let Some((plain, encoding)) = variant_of(name, names) {
        return match in_place {
            None => Role::VariantBeside {
                plain: plain.to_string(),
                encoding,
            },
            Some(chosen) if chosen == encoding => Role::VariantInPlace {
                plain: plain.to_string(),
                encoding,
            },
            Some(_) => Role::Folded,
        };
    }
    match in_place {
        Some(chosen) if names.contains(format!("{name}{}", chosen.suffix()).as_str()) => {
            Role::Replaced
        }
        _ => Role::Plain,
    }
}

/// The encodings to make at publish time for a plain file that `compress` names: every one
/// the artifact does not already have beside it (side by side), or the layout's one when no
/// variant stands in its place.
pub(super) fn to_generate(
    name: &str,
    names: &HashSet<&str>,
    layout: EncodedLayout,
) -> Vec<Encoding> {
    match Encoding::of_layout(layout) {
        None => Encoding::ALL
            .into_iter()
            .filter(|e| !names.contains(format!("{name}{}", e.suffix()).as_str()))
            .collect(),
        Some(chosen) => vec![chosen],
    }
}

/// What a generated file is made from, as the release record keeps it.
pub(super) fn fingerprint(source_sha256: &str, encoding: Encoding, level: u32) -> String {
    format!("{source_sha256}:{}:{level}", encoding.header())
}

/// `data` compressed with `encoding` at `level` (brotli quality 0–11, gzip 1–9).
pub(super) fn compress(data: &[u8], encoding: Encoding, level: u32) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Br => {
            let mut out = Vec::with_capacity(data.len() / 3 + 64);
            // The window fits the input: the encoder's tables grow with the window (at quality
            // 11, about 8 bytes per window byte), not with the data.
            let lgwin =
                (usize::BITS - data.len().max(1).saturating_sub(1).leading_zeros()).clamp(10, 22);
            let params = brotli::enc::BrotliEncoderParams {
                quality: level.min(11) as i32,
                lgwin: lgwin as i32,
                size_hint: data.len(),
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
            Ok(out)
        }
        Encoding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 3 + 64),
                flate2::Compression::new(level.clamp(1, 9)),
            );
            encoder.write_all(data)?;
            encoder.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn names<'a>(list: &[&'a str]) -> HashSet<&'a str> {
        list.iter().copied().collect()
    }

    #[test]
    fn variants_side_by_side_keep_their_names() {
        let all = names(&["app.js", "app.js.br", "app.js.gz", "lone.gz", "a/.br"]);
        let layout = EncodedLayout::SideBySide;
        assert_eq!(role_of("app.js", &all, layout), Role::Plain);
        assert_eq!(
            role_of("app.js.br", &all, layout),
            Role::VariantBeside {
                plain: "app.js".into(),
                encoding: Encoding::Br
            }
        );
        // A `.gz` with no plain file beside it is a gzip file, published as one.
        assert_eq!(role_of("lone.gz", &all, layout), Role::Plain);
        assert_eq!(role_of("a/.br", &all, layout), Role::Plain);
    }

    #[test]
    fn in_place_the_chosen_variant_takes_the_plain_name() {
        let all = names(&[
            "app.js",
            "app.js.br",
            "app.js.gz",
            "only.css",
            "only.css.gz",
        ]);
        let layout = EncodedLayout::Br;
        assert_eq!(role_of("app.js", &all, layout), Role::Replaced);
        assert_eq!(
            role_of("app.js.br", &all, layout),
            Role::VariantInPlace {
                plain: "app.js".into(),
                encoding: Encoding::Br
            }
        );
        assert_eq!(role_of("app.js.gz", &all, layout), Role::Folded);
        // No brotli variant: the plain file stays, its gzip variant is folded.
        assert_eq!(role_of("only.css", &all, layout), Role::Plain);
        assert_eq!(role_of("only.css.gz", &all, layout), Role::Folded);
    }

    #[test]
    fn publish_time_compression_makes_only_what_is_missing() {
        let all = names(&["app.js", "app.js.br", "site.css"]);
        assert_eq!(
            to_generate("app.js", &all, EncodedLayout::SideBySide),
            vec![Encoding::Gzip]
        );
        assert_eq!(
            to_generate("site.css", &all, EncodedLayout::SideBySide),
            Encoding::ALL.to_vec()
        );
        assert_eq!(
            to_generate("site.css", &all, EncodedLayout::Gzip),
            vec![Encoding::Gzip]
        );
    }

    proptest! {
        /// Both encodings decompress to the bytes compressed, at every level.
        #[test]
        fn compressed_bytes_decompress_to_the_original(data in proptest::collection::vec(any::<u8>(), 0..4000), br in 0u32..12, gz in 1u32..10) {
            let packed = compress(&data, Encoding::Br, br).unwrap();
            let mut unpacked = Vec::new();
            brotli::Decompressor::new(&packed[..], 4096).read_to_end(&mut unpacked).unwrap();
            prop_assert_eq!(&unpacked, &data);
            let packed = compress(&data, Encoding::Gzip, gz).unwrap();
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut unpacked).unwrap();
            prop_assert_eq!(&unpacked, &data);
        }

        /// Every name gets exactly one role, and a name is never both published and replaced.
        #[test]
        fn roles_are_consistent(list in proptest::collection::btree_set("[ab]{1,2}(\\.js)?(\\.br|\\.gz)?", 1..12)) {
            let all: HashSet<&str> = list.iter().map(String::as_str).collect();
            for layout in [EncodedLayout::SideBySide, EncodedLayout::Br, EncodedLayout::Gzip] {
                let mut keys = HashSet::new();
                for name in &list {
                    let key = match role_of(name, &all, layout) {
                        Role::Plain | Role::VariantBeside { .. } => Some(name.clone()),
                        Role::VariantInPlace { plain, .. } => Some(plain),
                        Role::Replaced | Role::Folded => None,
                    };
                    if let Some(key) = key {
                        prop_assert!(keys.insert(key.clone()), "{} published twice under {:?}", key, layout);
                    }
                }
            }
        }
    }
}
