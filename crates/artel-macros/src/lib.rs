//! `#[artel::task]`: turns an `async fn` into a named task.
//!
//! ```ignore
//! #[artel::task]                       // registered as "add"
//! async fn add(x: i64, y: i64) -> Result<i64, TaskError> { Ok(x + y) }
//!
//! #[artel::task(name = "app.add")]     // a Celery-compatible name
//! async fn add2(x: i64, y: i64) -> i64 { x + y }
//!
//! #[artel::task(blocking)]             // a plain fn, run on a blocking thread
//! fn checksum(path: String) -> Result<u32, TaskError> { ... }
//!
//! #[artel::task(blocking, process)]    // in a worker's child process: a crash or a
//! fn render(page: u32) -> Vec<u8> { ... }   // runaway loop takes down only that child
//!
//! #[artel::task(soft_time_limit_ms = 5000, time_limit_ms = 6000)]
//! async fn crawl(ctx: Context, url: String) -> Result<u32, TaskError> {
//!     ctx.check()?;                     // stop cleanly once the soft limit passed
//!     ...
//! }
//!
//! #[artel::task(unique_for = "60s")]   // sending it again while queued or running
//! async fn refresh(feed: String) { ... }   // returns the first call's id
//!
//! #[artel::task(lock = "report-{customer}", lock_timeout = "2s")]
//! async fn report(customer: u64) { ... }   // runs of one customer never overlap; a run
//!                                          // that waits 2 s for the lock goes back for later
//!
//! #[artel::task(cache_for = "10m")]      // a call with the same arguments within 10 min
//! async fn price(sku: String) -> u64 { ... }  // is answered from the backend's cache
//!
//! #[artel::task(rate_limit_global = "50/s", rate_limit_key = "{customer}")]
//! async fn sync(customer: u64) { ... }     // at most 50 runs/s per customer, across every worker
//!
//! #[artel::task(max_running_per_group = 2)] // at most 2 runs of one tenant (the call's
//! async fn import(file: String) { ... }     // `group_key`) at once, across every worker
//! ```
//!
//! A parameter of type `Context` is not an argument of the call: the worker passes the
//! running task's context (ids, retry count, cancellation, progress) in its place.
//!
//! The function becomes a unit struct of the same name implementing `artel::Task`, with
//! `add::call(x, y)` (run the body here), `add::s(x, y)` (a typed signature) and
//! `add::delay(&app, x, y)` (send it). Parameters are read from a message by position or
//! by name, so Python's `add.delay(2, y=3)` works too.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{FnArg, GenericArgument, ItemFn, LitStr, Pat, PathArguments, ReturnType, Token, Type, parse_macro_input};

/// Turns an `async fn` (or, with `blocking`, a plain `fn`) into a named task.
///
/// The function becomes a unit struct of the same name implementing `artel::Task`, with
/// `add::call(x, y)` (run the body here), `add::s(x, y)` (a typed signature) and
/// `add::delay(&app, x, y)` (send it). Arguments are read from a message by position or
/// by name, so Python's `add.delay(2, y=3)` works too; a parameter of type `Context` is
/// not an argument: the worker passes the running task's context in its place. The
/// return type is any serde type, or `Result<T, E>` with an error that converts into
/// `TaskError`.
///
/// Options, each checked at compile time:
///
/// | option | what it does |
/// |---|---|
/// | `name = "proj.tasks.add"` | the name it is registered and called by (default: the function's) |
/// | `blocking` | a plain `fn`, run on a blocking thread |
/// | `process` | runs in one of the worker's child processes: a crash or a runaway loop takes down only that child |
/// | `reject_on_worker_lost` | when its child dies, deliver the message again instead of storing `WorkerLostError` |
/// | `max_retries = N` | retries allowed (`TaskError::retry`, or any failure with `autoretry`) |
/// | `autoretry` | retry any failure, within `max_retries` |
/// | `retry_backoff_ms = N` | the first automatic retry's wait; doubles, full jitter |
/// | `max_deliveries = N` | deliveries without an outcome (its worker died each time) before the message is dead-lettered as `WorkerLostError` |
/// | `time_limit_ms = N`, `soft_time_limit_ms = N` | the hard limit stops the run; the soft one cancels it (`ctx.check()?`, `ctx.cancelled()`) |
/// | `rate_limit = "10/s"` | most runs per worker (`N/s`, `N/m`, `N/h`) |
/// | `rate_limit_global = "50/s"` | most runs across every worker of the broker; a run over it is published again for its slot |
/// | `rate_limit_key = "{customer}"` | makes `rate_limit_global` hold per key, read from the arguments |
/// | `unique_for = "60s"` | while a call with the same arguments is queued or running, sending returns its id |
/// | `lock = "report-{customer}"`, `lock_timeout = "2s"` | runs of one key never overlap; a run that cannot take the lock in time is published again |
/// | `cache_for = "10m"` | a call with the same arguments within that time is answered from the backend's cache |
/// | `max_running_per_group = N` | at most N runs of one group (`Signature::group_key`) at once, across every worker (1 to 64) |
///
/// ```ignore
/// #[artel::task(name = "reports.build", autoretry, max_retries = 5, retry_backoff_ms = 500,
///               soft_time_limit_ms = 60_000, lock = "report-{customer}")]
/// async fn build(ctx: Context, customer: u64, day: String) -> Result<String, TaskError> {
///     ctx.check()?;                          // stop cleanly once the soft limit passed
///     Ok(format!("report {customer} {day}"))
/// }
/// ```
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr as Options);
    let function = parse_macro_input!(item as ItemFn);
    expand(options, function).unwrap_or_else(syn::Error::into_compile_error).into()
}

#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    blocking: bool,
    process: bool,
    reject_on_worker_lost: bool,
    max_retries: Option<syn::LitInt>,
    max_deliveries: Option<syn::LitInt>,
    max_running_per_group: Option<syn::LitInt>,
    autoretry: bool,
    retry_backoff_ms: Option<syn::LitInt>,
    time_limit_ms: Option<syn::LitInt>,
    soft_time_limit_ms: Option<syn::LitInt>,
    rate_limit: Option<LitStr>,
    unique_for: Option<(LitStr, u64)>,
    lock: Option<LitStr>,
    lock_timeout: Option<(LitStr, u64)>,
    cache_for: Option<(LitStr, u64)>,
    rate_limit_global: Option<LitStr>,
    rate_limit_key: Option<LitStr>,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            match key.to_string().as_str() {
                "name" => {
                    input.parse::<Token![=]>()?;
                    options.name = Some(input.parse()?);
                }
                "blocking" => options.blocking = true,
                "process" => options.process = true,
                "reject_on_worker_lost" => options.reject_on_worker_lost = true,
                "autoretry" => options.autoretry = true,
                "max_retries" => {
                    input.parse::<Token![=]>()?;
                    options.max_retries = Some(input.parse()?);
                }
                "max_deliveries" => {
                    input.parse::<Token![=]>()?;
                    options.max_deliveries = Some(input.parse()?);
                }
                "max_running_per_group" => {
                    input.parse::<Token![=]>()?;
                    let cap: syn::LitInt = input.parse()?;
                    // The runtime's bound: a full group costs one lock attempt per slot.
                    if !matches!(cap.base10_parse::<u32>(), Ok(1..=64)) {
                        return Err(syn::Error::new(cap.span(), "max_running_per_group must be 1 to 64"));
                    }
                    options.max_running_per_group = Some(cap);
                }
                "retry_backoff_ms" => {
                    input.parse::<Token![=]>()?;
                    options.retry_backoff_ms = Some(input.parse()?);
                }
                "time_limit_ms" => {
                    input.parse::<Token![=]>()?;
                    options.time_limit_ms = Some(input.parse()?);
                }
                "soft_time_limit_ms" => {
                    input.parse::<Token![=]>()?;
                    options.soft_time_limit_ms = Some(input.parse()?);
                }
                "rate_limit" => {
                    input.parse::<Token![=]>()?;
                    let rate: LitStr = input.parse()?;
                    check_rate(&rate)?;
                    options.rate_limit = Some(rate);
                }
                "unique_for" => {
                    input.parse::<Token![=]>()?;
                    options.unique_for = Some(duration(input.parse()?)?);
                }
                "lock" => {
                    input.parse::<Token![=]>()?;
                    options.lock = Some(input.parse()?);
                }
                "lock_timeout" => {
                    input.parse::<Token![=]>()?;
                    options.lock_timeout = Some(duration(input.parse()?)?);
                }
                "cache_for" => {
                    input.parse::<Token![=]>()?;
                    options.cache_for = Some(duration(input.parse()?)?);
                }
                "rate_limit_global" => {
                    input.parse::<Token![=]>()?;
                    let rate: LitStr = input.parse()?;
                    check_rate(&rate)?;
                    options.rate_limit_global = Some(rate);
                }
                "rate_limit_key" => {
                    input.parse::<Token![=]>()?;
                    options.rate_limit_key = Some(input.parse()?);
                }
                other => {
                    let message = format!(
                        "unknown task option `{other}`; expected `name = \"...\"`, `blocking`, `process`, `reject_on_worker_lost`, `max_retries = N`, \
                         `max_deliveries = N`, `max_running_per_group = N`, `autoretry`, `retry_backoff_ms = N`, `time_limit_ms = N`, `soft_time_limit_ms = N`, \
                         `rate_limit = \"N/s\"`, `rate_limit_global = \"N/s\"`, `rate_limit_key = \"{{param}}\"`, `unique_for = \"60s\"`, \
                         `cache_for = \"10m\"`, `lock = \"key-{{param}}\"` or `lock_timeout = \"5s\"`"
                    );
                    return Err(syn::Error::new(key.span(), message));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(options)
    }
}

/// Rejects a rate limit the worker could not read (`N/s`, `N/m`, `N/h`, N > 0) at compile time.
fn check_rate(rate: &LitStr) -> syn::Result<()> {
    let text = rate.value();
    let ok = text.split_once('/').is_some_and(|(count, unit)| {
        count.trim().parse::<u32>().is_ok_and(|n| n > 0) && matches!(unit.trim(), "s" | "m" | "h")
    });
    if ok {
        Ok(())
    } else {
        Err(syn::Error::new(rate.span(), format!("rate limit {text:?} is not N/s, N/m or N/h (N > 0)")))
    }
}

/// A duration written `500ms`, `10s`, `5m`, `2h` or `1d`, in milliseconds.
fn duration(text: LitStr) -> syn::Result<(LitStr, u64)> {
    let value = text.value();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let scale = match unit {
        "ms" => Some(1),
        "s" => Some(1000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        _ => None,
    };
    match (number.parse::<u64>().ok(), scale) {
        (Some(n), Some(scale)) if n > 0 => match n.checked_mul(scale) {
            Some(ms) => Ok((text, ms)),
            None => Err(syn::Error::new(text.span(), format!("{value:?} is too long"))),
        },
        _ => Err(syn::Error::new(
            text.span(),
            format!("{value:?} is not a duration like \"500ms\", \"10s\", \"5m\", \"2h\" or \"1d\""),
        )),
    }
}

/// Rejects a lock key whose `{name}`s are not parameters of the task.
fn check_template(what: &str, lock: &LitStr, names: &[syn::Ident]) -> syn::Result<()> {
    let text = lock.value();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(syn::Error::new(lock.span(), format!("{what} {text:?}: a `{{` is never closed")));
        };
        let name = &rest[open + 1..open + close];
        if !names.iter().any(|n| n == name) {
            let message = format!("{what} {text:?}: `{{{name}}}` is not a parameter of this task");
            return Err(syn::Error::new(lock.span(), message));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// A type as written, without the spaces a token stream prints between its tokens.
fn tidy(tokens: TokenStream2) -> String {
    let text = tokens.to_string();
    [(" :: ", "::"), (" <", "<"), ("< ", "<"), (" >", ">"), (" ,", ","), ("& ", "&"), ("( ", "("), (" )", ")")]
        .iter()
        .fold(text, |text, (from, to)| text.replace(from, to))
}

/// Whether a parameter is the task's `Context` (by its type's last path segment).
fn is_context(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Context"))
}

/// The success type of a `Result<T, E>` return, or the whole type otherwise.
fn output_type(ret: &ReturnType) -> (Type, bool) {
    let ty = match ret {
        ReturnType::Default => return (syn::parse_quote!(()), false),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Type::Path(path) = &ty {
        if let Some(last) = path.path.segments.last() {
            if last.ident == "Result" {
                if let PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(GenericArgument::Type(ok)) = args.args.first() {
                        return (ok.clone(), true);
                    }
                }
            }
        }
    }
    (ty, false)
}

fn expand(options: Options, function: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    match (sig.asyncness.is_some(), options.blocking) {
        (false, false) => {
            let message =
                "#[artel::task] needs an `async fn`; for blocking work write `#[artel::task(blocking)] fn ...`";
            return Err(syn::Error::new_spanned(sig.fn_token, message));
        }
        (true, true) => {
            let message =
                "`blocking` tasks are plain `fn`s (they run on a blocking thread); drop `async` or `blocking`";
            return Err(syn::Error::new_spanned(sig.asyncness, message));
        }
        _ => {}
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&sig.generics, "tasks cannot be generic: arguments arrive as JSON"));
    }
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut context = None;
    for input in &sig.inputs {
        let FnArg::Typed(arg) = input else {
            return Err(syn::Error::new_spanned(input, "tasks are free functions; `self` is not allowed"));
        };
        let Pat::Ident(ident) = &*arg.pat else {
            return Err(syn::Error::new_spanned(&arg.pat, "task parameters must be plain names"));
        };
        if is_context(&arg.ty) {
            if context.replace(ident.ident.clone()).is_some() {
                return Err(syn::Error::new_spanned(&arg.ty, "a task takes at most one `Context` parameter"));
            }
            continue;
        }
        names.push(ident.ident.clone());
        types.push((*arg.ty).clone());
    }
    // `call` keeps the parameters in the order written, the context included.
    let all_params: Vec<TokenStream2> = sig.inputs.iter().map(|input| quote!(#input)).collect();
    let all_names: Vec<TokenStream2> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(arg) => match &*arg.pat {
                Pat::Ident(ident) => Some(quote!(#ident)),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    let bind_context = context.as_ref().map(|name| quote!(let #name = __artel_ctx;));
    let vis = &function.vis;
    let attrs = &function.attrs;
    let ident = &sig.ident;
    let body = &function.block;
    let ret = &sig.output;
    let task_name = options.name.unwrap_or_else(|| LitStr::new(&ident.to_string(), Span::call_site()));
    let (output, fallible) = output_type(ret);
    let indices = 0..names.len();
    let name_strings = names.iter().map(|n| n.to_string());
    let blocking = quote!(::artel::__private::run_blocking(__artel_thread, move || Self::call(#(#all_names),*)).await);
    // Taken before the context may move into the body's arguments.
    let hold_thread = options.blocking.then(|| quote!(let __artel_thread = __artel_ctx.unstoppable();));
    let asyncness = if options.blocking { quote!() } else { quote!(async) };
    let call_result = match (options.blocking, fallible) {
        (false, true) => quote!(Self::call(#(#all_names),*).await.map_err(::core::convert::Into::into)),
        (false, false) => quote!(::core::result::Result::Ok(Self::call(#(#all_names),*).await)),
        (true, true) => quote!(#blocking?.map_err(::core::convert::Into::into)),
        (true, false) => blocking,
    };
    let decoded = format_ident!("__artel_decoded");
    let signature = {
        let params: Vec<String> = names.iter().zip(&types).map(|(n, t)| format!("{n}: {}", tidy(quote!(#t)))).collect();
        format!("{}({}) -> {}", task_name.value(), params.join(", "), tidy(quote!(#output)))
    };
    let max_retries =
        options.max_retries.as_ref().map(|n| quote!(options.max_retries = ::core::option::Option::Some(#n);));
    let max_deliveries =
        options.max_deliveries.as_ref().map(|n| quote!(options.max_deliveries = ::core::option::Option::Some(#n);));
    let max_running_per_group = options
        .max_running_per_group
        .as_ref()
        .map(|n| quote!(options.max_running_per_group = ::core::option::Option::Some(#n);));
    let autoretry = options.autoretry.then(|| quote!(options.autoretry = ::core::option::Option::Some(true);));
    let process = options.process.then(|| quote!(options.process = ::core::option::Option::Some(true);));
    let reject_on_worker_lost = options
        .reject_on_worker_lost
        .then(|| quote!(options.reject_on_worker_lost = ::core::option::Option::Some(true);));
    if let Some(lock) = &options.lock {
        check_template("lock", lock, &names)?;
    }
    if let Some(key) = &options.rate_limit_key {
        if options.rate_limit_global.is_none() {
            let message = "rate_limit_key names the key a rate_limit_global holds per: set rate_limit_global too";
            return Err(syn::Error::new(key.span(), message));
        }
        check_template("rate_limit_key", key, &names)?;
    }
    let millis = |field: TokenStream2, ms: &Option<syn::LitInt>| {
        ms.as_ref()
            .map(|ms| quote!(options.#field = ::core::option::Option::Some(::std::time::Duration::from_millis(#ms));))
    };
    let text = |field: TokenStream2, value: &Option<LitStr>| {
        value
            .as_ref()
            .map(|value| quote!(options.#field = ::core::option::Option::Some(::std::string::String::from(#value));))
    };
    let span = |field: TokenStream2, value: &Option<(LitStr, u64)>| {
        value.as_ref().map(
            |(_, ms)| quote!(options.#field = ::core::option::Option::Some(::std::time::Duration::from_millis(#ms));),
        )
    };
    let rate_limit = text(quote!(rate_limit), &options.rate_limit);
    let rate_limit_global = text(quote!(rate_limit_global), &options.rate_limit_global);
    let rate_limit_key = text(quote!(rate_limit_key), &options.rate_limit_key);
    let lock = text(quote!(lock), &options.lock);
    let lock_timeout = span(quote!(lock_timeout), &options.lock_timeout);
    let unique_for = span(quote!(unique_for), &options.unique_for);
    let cache_for = span(quote!(cache_for), &options.cache_for);
    let send_unique = options
        .unique_for
        .as_ref()
        .map(|(_, ms)| quote!(.with(|s| s.unique_for(::std::time::Duration::from_millis(#ms)))));
    let param_names: Vec<String> = names.iter().map(ToString::to_string).collect();
    let backoff = millis(quote!(retry_backoff), &options.retry_backoff_ms);
    let time_limit = millis(quote!(time_limit), &options.time_limit_ms);
    let soft_time_limit = millis(quote!(soft_time_limit), &options.soft_time_limit_ms);
    Ok(quote! {
        #(#attrs)*
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #ident;

        impl #ident {
            /// Runs the task body directly in this process.
            // A task takes what its callers send, however many keyword arguments that is.
            #[allow(clippy::too_many_arguments)]
            #vis #asyncness fn call(#(#all_params),*) #ret #body

            /// A typed signature of this task with these arguments, ready to send.
            #[allow(clippy::too_many_arguments)]
            #vis fn s(#(#names: #types),*) -> ::artel::TypedSignature<#output> {
                ::artel::TypedSignature::encode(
                    #task_name,
                    (|| ::core::result::Result::Ok(::std::vec![#(::artel::__private::to_value(&#names)?),*]))(),
                )#send_unique
            }

            /// Sends the task through `app` and returns a handle to its result.
            #[allow(clippy::too_many_arguments)]
            #vis async fn delay(
                app: &::artel::App,
                #(#names: #types),*
            ) -> ::core::result::Result<::artel::AsyncResult<#output>, ::artel::SendError> {
                Self::s(#(#names),*).delay(app).await
            }
        }

        impl ::artel::Task for #ident {
            const NAME: &'static str = #task_name;
            type Output = #output;
            const SIGNATURE: &'static str = #signature;
            const PARAMS: &'static [&'static str] = &[#(#param_names),*];

            fn options(&self) -> ::artel::TaskOptions {
                #[allow(unused_mut)]
                let mut options = ::artel::TaskOptions::default();
                #max_retries
                #max_deliveries
                #max_running_per_group
                #autoretry
                #process
                #reject_on_worker_lost
                #backoff
                #time_limit
                #soft_time_limit
                #rate_limit
                #unique_for
                #lock
                #lock_timeout
                #rate_limit_global
                #rate_limit_key
                #cache_for
                options
            }

            fn run(
                &self,
                mut __artel_args: ::artel::Arguments,
                __artel_ctx: ::artel::Context,
            ) -> ::artel::BoxFuture<'static, ::core::result::Result<#output, ::artel::TaskError>> {
                let #decoded = (|| -> ::core::result::Result<_, ::std::string::String> {
                    #(let #names: #types = __artel_args.take(#indices, #name_strings)?;)*
                    __artel_args.finish()?;
                    ::core::result::Result::Ok((#(#names,)*))
                })();
                ::std::boxed::Box::pin(async move {
                    #hold_thread
                    #bind_context
                    let (#(#names,)*) = #decoded
                        .map_err(|e| ::artel::TaskError::invalid_arguments(<Self as ::artel::Task>::NAME, e))?;
                    #call_result
                })
            }
        }
    })
}
