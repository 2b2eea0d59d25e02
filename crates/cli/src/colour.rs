//! When output is coloured: `--color never|always|auto`; `auto` (the default) colours a
//! terminal only, and not when `NO_COLOR` is set (anstream's rules, as clap's own).

use guestwall_diagnose::Palette;

/// The `--color` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum When {
    /// Colour when the stream is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl When {
    /// Whether `stream` is coloured.
    pub fn colours<S: anstream::stream::RawStream>(self, stream: &S) -> bool {
        match self {
            When::Always => true,
            When::Never => false,
            When::Auto => anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never,
        }
    }

    /// The palette for standard output.
    pub fn stdout(self) -> Palette {
        Palette::new(self.colours(&std::io::stdout()))
    }

    /// The palette for standard error.
    pub fn stderr(self) -> Palette {
        Palette::new(self.colours(&std::io::stderr()))
    }
}
