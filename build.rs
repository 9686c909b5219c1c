//! Compiles the Slint UI (`ui/app-window.slint`, the only entry) into Rust code included by `src/view`.
//! Debug info is kept so the headless tests can find elements by id as well as by accessible label, and the
//! translations under `ui/translations/` are bundled so the language can be switched at run time.

fn main() {
    let config = slint_build::CompilerConfiguration::new()
        .with_debug_info(true)
        .with_bundled_translations("ui/translations")
        // The .po files carry no msgctxt: one string, one translation, wherever it appears.
        .with_default_translation_context(slint_build::DefaultTranslationContext::None);
    if let Err(e) = slint_build::compile_with_config("ui/app-window.slint", config) {
        // A build script reports failure by panicking; the message is the Slint compiler's diagnostic.
        panic!("compiling ui/app-window.slint failed: {e}");
    }
}
