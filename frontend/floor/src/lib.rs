//! The framework's floor (see Cargo.toml): what any Leptos 0.8 page with a router, a resource, an
//! action and a list costs in wasm before the app's own pages add anything.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub name: String,
    pub status: String,
    pub count: u32,
}

#[server(endpoint = "items", input = leptos::server_fn::codec::Json)]
pub async fn items() -> Result<Vec<Item>, ServerFnError> {
    Ok(Vec::new())
}

#[server(endpoint = "poke", input = leptos::server_fn::codec::Json)]
pub async fn poke(name: String) -> Result<Item, ServerFnError> {
    Err(ServerFnError::new(name))
}

/// The interactive part: a list from a server function, an input and a button that calls another.
#[cfg_attr(feature = "islands", island)]
#[cfg_attr(not(feature = "islands"), component)]
fn Panel() -> impl IntoView {
    let list = Resource::new(|| (), |_| items());
    let poke = Action::new(|name: &String| poke(name.clone()));
    let (text, set_text) = signal(String::new());
    view! {
        <input prop:value=text on:input=move |ev| set_text.set(event_target_value(&ev))/>
        <button on:click=move |_| {
            poke.dispatch(text.get());
        }>"Poke"</button>
        <p>{move || poke.value().get().map(|answer| format!("{answer:?}"))}</p>
        <Suspense fallback=|| "Loading…">
            <ul>
                {move || Suspend::new(async move {
                    list.await.map(|items| {
                        items
                            .into_iter()
                            .map(|i| view! { <li class=i.status>{i.name}" "{i.count}</li> })
                            .collect_view()
                    })
                })}
            </ul>
        </Suspense>
    }
}

#[cfg(not(feature = "islands"))]
#[component]
pub fn App() -> impl IntoView {
    use leptos_router::components::{Route, Router, Routes};
    use leptos_router::path;
    view! {
        <Router>
            <main>
                <Routes fallback=|| "Not found">
                    <Route path=path!("/") view=|| view! { <h1>"Items"</h1> <Panel/> }/>
                    <Route path=path!("/about") view=|| view! { <p>"About"</p> }/>
                </Routes>
            </main>
        </Router>
    }
}

#[cfg(not(feature = "islands"))]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}

#[cfg(feature = "islands")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
