//! The `[directory]` section (spec §9): where organisations, products, agreements and
//! delivery addresses come from. Without the section there is no directory: the node
//! delivers to its own organisations without agreement checks (a closed node).

use std::path::PathBuf;

use super::Checker;
use super::file::DirectorySection;

/// The directory the node routes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// Where the data lives.
    pub engine: DirectoryEngine,
    /// Refuse products the directory does not know with `UnknownProductType` (default
    /// false: any product with a fitting agreement may pass).
    pub known_products_only: bool,
}

/// A directory engine and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryEngine {
    /// A TOML file with SHS documents beside it (see `directory::file`).
    File {
        /// The TOML file, resolved against the configuration's folder.
        path: PathBuf,
    },
}

impl Checker {
    pub(super) fn directory(
        &mut self,
        section: Option<&DirectorySection>,
    ) -> Option<DirectoryConfig> {
        let section = section?;
        let engine = match section.engine.as_str() {
            "file" => match &section.file {
                Some(file) => DirectoryEngine::File {
                    path: self.path(file),
                },
                None => {
                    self.problem("directory.file: the file engine needs a file".to_owned());
                    return None;
                }
            },
            other => {
                self.problem(format!(
                    "directory.engine {other:?}: only \"file\" is built"
                ));
                return None;
            }
        };
        Some(DirectoryConfig {
            engine,
            known_products_only: section.known_products_only,
        })
    }
}
