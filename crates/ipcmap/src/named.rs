//! What every registry entry (a codec, an output format) says of itself: its name on the
//! command line and in reports, and its line for `--help`.

/// A registry entry's name and `--help` line, declared once in [`Named::id`].
pub trait Named {
    /// Its name and its line for `--help`.
    fn id(&self) -> (&'static str, &'static str);
    /// Its name on the command line and in reports.
    fn name(&self) -> &'static str {
        self.id().0
    }
    /// Its line for `--help`.
    fn about(&self) -> &'static str {
        self.id().1
    }
}

/// `impl Named for $ty`: its name and `--help` line, in one line of the entry's file.
macro_rules! named {
    ($ty:ty, $name:expr, $about:expr $(,)?) => {
        impl $crate::named::Named for $ty {
            fn id(&self) -> (&'static str, &'static str) {
                ($name, $about)
            }
        }
    };
}
pub(crate) use named;

/// A registry's slice, from its list: `for_each_codec!(registry_slice!())` is `&[&Bincode,
/// ...]`. Each registry is declared once, as a list (`for_each_strategy!`, `for_each_codec!`,
/// `for_each_transport!`, `for_each_exporter!`) that makes both the registry and, in the
/// tests, one `#[test]` per entry and behaviour.
macro_rules! registry_slice {
    ([$($args:tt)*] $($name:ident => $value:expr),* $(,)?) => {
        &[$($value),*]
    };
}
pub(crate) use registry_slice;

/// The names a registry list gives its entries, in order: checked against each entry's own
/// [`Named::name`] by the registries' unit tests, so a test named for an entry runs that entry.
#[cfg(test)]
macro_rules! registry_names {
    ([$($args:tt)*] $($name:ident => $value:expr),* $(,)?) => {
        [$(stringify!($name)),*]
    };
}

#[cfg(test)]
mod tests {
    /// A test generated for an entry (named by the list) runs that entry (found by its own
    /// name): the two agree, in order, for every registry.
    #[test]
    fn every_registry_lists_its_entries_by_their_own_names() {
        use crate::codec::CodecKind;
        use crate::settings::TransportKind;
        use crate::strategy::Mode;
        let strategies: Vec<&str> = Mode::all().into_iter().map(Mode::name).collect();
        assert_eq!(crate::for_each_strategy!(registry_names!()).to_vec(), strategies);
        let codecs: Vec<&str> = CodecKind::all().map(CodecKind::name).collect();
        assert_eq!(crate::for_each_codec!(registry_names!()).to_vec(), codecs);
        let transports: Vec<&str> = TransportKind::all().map(TransportKind::name).collect();
        assert_eq!(crate::for_each_transport!(registry_names!()).to_vec(), transports);
        let exporters: Vec<&str> = crate::report::EXPORTERS.iter().map(|e| e.name()).collect();
        assert_eq!(crate::for_each_exporter!(registry_names!()).to_vec(), exporters);
    }
}
