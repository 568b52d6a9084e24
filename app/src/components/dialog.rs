//! The page's one kind of dialog: a native modal `<dialog>` (the rest of the page inert while it
//! is open) that takes the focus, keeps Tab inside it, closes on Escape or a click beside it, and
//! gives the focus back to what had it. Every confirmation — resume, rollback, cancel, discard,
//! promote, revoke — is a [`Question`] asked through [`Asker`], shown by the one
//! [`QuestionDialog`] the app renders; the pause dialog is a [`Modal`] of its own.

use leptos::prelude::*;

/// What the page asks before doing something that matters.
#[derive(Clone)]
pub struct Question {
    /// The question itself, the dialog's name: "Roll DEV-WEB back to web-master-11?".
    pub title: String,
    /// What the person should know first, one paragraph each (a verdict, a consequence).
    pub details: Vec<String>,
    /// The button that does it, named for what it does: "Roll back", "Cancel the deployment".
    pub yes: String,
    /// Whether doing it deletes or stops something (the button is red).
    pub danger: bool,
    /// Run when the person says yes.
    pub on_yes: Callback<()>,
}

impl Question {
    pub fn new(title: impl Into<String>, yes: impl Into<String>, on_yes: Callback<()>) -> Self {
        Question {
            title: title.into(),
            details: Vec::new(),
            yes: yes.into(),
            danger: false,
            on_yes,
        }
    }

    /// Adds a paragraph under the question.
    pub fn detail(mut self, text: impl Into<String>) -> Self {
        self.details.push(text.into());
        self
    }

    /// Marks the answer as one that deletes or stops something.
    pub fn dangerous(mut self) -> Self {
        self.danger = true;
        self
    }
}

/// Asks the page's questions, one at a time (provided by the app).
#[derive(Clone, Copy)]
pub struct Asker(RwSignal<Option<Question>>);

impl Asker {
    pub fn new() -> Self {
        Asker(RwSignal::new(None))
    }

    /// Shows the question; its `on_yes` runs only if the person confirms.
    pub fn ask(&self, question: Question) {
        self.0.set(Some(question));
    }
}

impl Default for Asker {
    fn default() -> Self {
        Self::new()
    }
}

/// The page's asker.
pub fn use_asker() -> Asker {
    expect_context::<Asker>()
}

/// The dialog of the question being asked, if any (rendered once, by the app).
#[component]
pub fn QuestionDialog() -> impl IntoView {
    let asker = use_asker();
    move || {
        asker.0.get().map(|q| {
            let close = Callback::new(move |()| asker.0.set(None));
            let on_yes = q.on_yes;
            let yes_class = if q.danger {
                "btn btn-danger"
            } else {
                "btn btn-primary"
            };
            view! {
                <Modal labelled_by="question-title" described_by="question-details" on_close=close>
                    <h2 id="question-title" class="question-title">{q.title.clone()}</h2>
                    <div id="question-details" class="question-details">
                        {q.details.iter().map(|d| view! { <p>{d.clone()}</p> }).collect_view()}
                    </div>
                    <div class="modal-actions">
                        <button type="button" class="btn btn-quiet" on:click=move |_| close.run(())>"Go back"</button>
                        <button type="button" class=yes_class data-autofocus="true"
                            on:click=move |_| { close.run(()); on_yes.run(()); }>
                            {q.yes.clone()}
                        </button>
                    </div>
                </Modal>
            }
        })
    }
}

/// What can take the focus inside a dialog, in the order Tab visits it.
const FOCUSABLE: &str = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), \
     textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

/// A modal dialog around `children`: shown with `showModal()` once mounted, focus on the element
/// marked `data-autofocus` (else the first control), Tab and Shift+Tab kept inside, Escape or a
/// click on the backdrop calls `on_close`, and the focus returns where it was when it closes.
#[component]
pub fn Modal(
    /// The id of the element that names the dialog (its heading).
    labelled_by: &'static str,
    /// The id of the element that describes it, if any.
    #[prop(optional)]
    described_by: Option<&'static str>,
    /// Called when the person dismisses the dialog (Escape, the backdrop).
    on_close: Callback<()>,
    children: Children,
) -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    // Effects run only in the browser.
    Effect::new(move |_| {
        use leptos::wasm_bindgen::JsCast;
        let Some(element) = dialog.get() else {
            return;
        };
        let before = document().active_element();
        let _ = element.show_modal();
        let first = element
            .query_selector("[data-autofocus]")
            .ok()
            .flatten()
            .or_else(|| element.query_selector(FOCUSABLE).ok().flatten());
        if let Some(target) = first.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = target.focus();
        }
        let kept = leptos::__reexports::send_wrapper::SendWrapper::new((element, before));
        on_cleanup(move || {
            // Closed first: while a modal dialog is open the rest of the page is inert and cannot
            // take the focus. Then back to what had the focus; if the page re-rendered it
            // meanwhile, to the main content.
            let (element, before) = kept.take();
            element.close();
            let target = before.filter(|e| e.is_connected()).or_else(|| {
                // `<main>` takes the focus only when it is told it may (from scripts, not Tab).
                let main = document().query_selector("main").ok().flatten()?;
                if !main.has_attribute("tabindex") {
                    let _ = main.set_attribute("tabindex", "-1");
                }
                Some(main)
            });
            if let Some(target) = target.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
                let _ = target.focus();
            }
        });
    });
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Tab" {
            keep_tab_inside(dialog, &ev);
        }
    };
    // Escape: the browser's `cancel`; the page decides (the dialog is removed, not just closed).
    let on_cancel = move |ev: leptos::ev::Event| {
        ev.prevent_default();
        on_close.run(());
    };
    // A click on the backdrop lands on the dialog element itself (its content has the padding).
    let on_click = move |ev: leptos::ev::MouseEvent| {
        let on_backdrop = dialog.get_untracked().is_some_and(|d| {
            let d: &web_sys::EventTarget = d.as_ref();
            ev.target().as_ref() == Some(d)
        });
        if on_backdrop {
            on_close.run(());
        }
    };
    view! {
        <dialog node_ref=dialog class="modal" aria-labelledby=labelled_by aria-describedby=described_by
            on:keydown=on_keydown on:cancel=on_cancel on:click=on_click>
            <div class="modal-body">{children()}</div>
        </dialog>
    }
}

/// Tab from the last control goes to the first, Shift+Tab from the first to the last.
fn keep_tab_inside(dialog: NodeRef<leptos::html::Dialog>, ev: &leptos::ev::KeyboardEvent) {
    use leptos::wasm_bindgen::JsCast;
    let Some(element) = dialog.get_untracked() else {
        return;
    };
    let Ok(list) = element.query_selector_all(FOCUSABLE) else {
        return;
    };
    let controls: Vec<web_sys::HtmlElement> = (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        .collect();
    let (Some(first), Some(last)) = (controls.first(), controls.last()) else {
        ev.prevent_default();
        return;
    };
    let active = document().active_element();
    let is = |e: &web_sys::HtmlElement| {
        active
            .as_ref()
            .is_some_and(|a| a == e.unchecked_ref::<web_sys::Element>())
    };
    let inside = controls.iter().any(is);
    if ev.shift_key() && (is(first) || !inside) {
        ev.prevent_default();
        let _ = last.focus();
    } else if !ev.shift_key() && (is(last) || !inside) {
        ev.prevent_default();
        let _ = first.focus();
    }
}
