//! The browser entry: hydrates the server-rendered page into the live Leptos app.
// The typed view of the whole app, hydrated lazily, is deeper than the default limit.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy: the pages other than the overview are loaded (their own wasm) when visited.
    leptos::mount::hydrate_lazy(app::App);
}
