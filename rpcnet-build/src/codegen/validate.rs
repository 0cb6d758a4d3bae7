//! The rules a service trait must follow, one function each, every error spanned at the
//! offending tokens and naming the fix. Errors are collected so one build shows them all.

use std::collections::HashMap;

use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, Ident, ItemTrait, TraitItem, TraitItemFn, Type};

use super::model::{Method, method_span, stream_item};

/// Errors gathered while reading a trait, reported together.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    /// All errors combined into one, or `Ok` if there were none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
        let Some(mut first) = errors.next() else { return Ok(()) };
        for error in errors {
            first.combine(error);
        }
        Err(first)
    }
}

/// Names generated on `XClient` that a method must not take. `XClusterClient` adds only
/// associated functions (no `self`), which method calls through its `Deref` never reach.
pub(crate) const CLIENT_ITEMS: &[&str] = &[
    "connect",
    "builder",
    "from_channel",
    "channel",
    "with_options",
    "with_timeout",
    "with_retries",
    "with_affinity_key",
    "with_metadata",
    "with_response_metadata",
    "with_layer",
    "endpoint_stats",
];

/// The trait itself: no generics, not `unsafe`, not `auto`.
pub(crate) fn service_shape(service: &ItemTrait, errors: &mut Errors) {
    if !service.generics.params.is_empty() || service.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            service.generics.span(),
            "rpc services cannot be generic: client and server must agree on concrete types",
        ));
    }
    if let Some(unsafety) = &service.unsafety {
        errors.push(syn::Error::new(unsafety.span(), "rpc services cannot be `unsafe` traits"));
    }
    if let Some(auto) = &service.auto_token {
        errors.push(syn::Error::new(auto.span(), "rpc services cannot be `auto` traits"));
    }
}

/// Only methods: associated consts, types and macros have no meaning on the wire.
pub(crate) fn only_methods(item: &TraitItem) -> syn::Error {
    let what = match item {
        TraitItem::Const(_) => "associated const",
        TraitItem::Type(_) => "associated type",
        TraitItem::Macro(_) => "macro invocation",
        _ => "item",
    };
    syn::Error::new(
        item.span(),
        format!("an rpc service holds only `async fn` methods; move this {what} out of the trait"),
    )
}

/// `async fn name(&self, ...)`: no `const`, `unsafe`, `extern`, generics, body or variadics.
pub(crate) fn method_signature(method: &TraitItemFn, errors: &mut Errors) {
    let sig = &method.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            format!("rpc methods must be `async fn`: write `async fn {}(&self, ...)`", sig.ident),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(constness.span(), "rpc methods cannot be `const`"));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new(unsafety.span(), "rpc methods cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new(abi.span(), "rpc methods cannot have an `extern` ABI"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            "rpc methods cannot be generic: the server must know the concrete types it decodes",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(variadic.span(), "rpc methods cannot be variadic"));
    }
    if let Some(body) = &method.default {
        errors.push(syn::Error::new(
            body.span(),
            "rpc methods have no default body: write the implementation in `impl Trait for YourType`",
        ));
    }
    receiver(method, errors);
}

/// The first parameter is exactly `&self`.
fn receiver(method: &TraitItemFn, errors: &mut Errors) {
    let fix = "rpc methods take `&self` as their first parameter: the server shares one value between calls";
    match method.sig.inputs.first() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.as_ref().is_some_and(|(_, lifetime)| lifetime.is_none())
                && receiver.mutability.is_none()
                && receiver.colon_token.is_none() => {}
        Some(FnArg::Receiver(receiver)) => errors.push(syn::Error::new(receiver.span(), fix)),
        _ => errors.push(syn::Error::new(method_span(method), fix)),
    }
}

/// Arguments and results travel over the network: no references, no `impl Trait`.
pub(crate) fn owned_type(ty: &Type, what: &str, errors: &mut Errors) {
    struct Finder<'e, 'w> {
        errors: &'e mut Errors,
        what: &'w str,
    }
    impl<'ast> Visit<'ast> for Finder<'_, '_> {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            self.errors.push(syn::Error::new(
                reference.span(),
                format!(
                    "{} travel over the network and must be owned: use `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
                    self.what
                ),
            ));
        }
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            self.errors.push(syn::Error::new(
                ty.span(),
                format!("{} travel over the network: name a concrete type instead of `impl Trait`", self.what),
            ));
        }
        fn visit_type_bare_fn(&mut self, ty: &'ast syn::TypeBareFn) {
            self.errors.push(syn::Error::new(ty.span(), format!("{} cannot be functions", self.what)));
        }
    }
    Finder { errors, what }.visit_type(ty);
}

/// `RpcStream` only as a whole argument or as the whole return type, never inside another
/// type (`Option<RpcStream<T>>`, `Result<RpcStream<T>, E>`, `Vec<RpcStream<T>>`).
pub(crate) fn stream_only_at_top(ty: &Type, is_top_level_stream: bool, errors: &mut Errors) {
    struct Finder<'e> {
        errors: &'e mut Errors,
        skip_outer: bool,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type(&mut self, ty: &'ast Type) {
            if stream_item(ty).is_some() && !std::mem::take(&mut self.skip_outer) {
                self.errors.push(syn::Error::new(
                    ty.span(),
                    "`RpcStream` is supported only as a method's only argument or as its whole return type; \
                     send errors as stream items (`Err(RpcError)`) instead of wrapping the stream",
                ));
                return;
            }
            self.skip_outer = false;
            syn::visit::visit_type(self, ty);
        }
    }
    Finder { errors, skip_outer: is_top_level_stream }.visit_type(ty);
}

/// Two methods cannot share a name (nor the constant their names map to).
pub(crate) fn unique_names(methods: &[Method<'_>], errors: &mut Errors) {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for method in methods {
        let constant = method.const_name().to_string();
        if let Some(first) = seen.insert(constant.clone(), method.name) {
            errors.push(syn::Error::new(
                method.name.span(),
                format!("`{}` clashes with `{first}`: rpc method names must be unique, ignoring case", method.name),
            ));
        }
    }
}

/// A method cannot take a name the generated client already uses.
pub(crate) fn no_generated_name_clash(service: &Ident, methods: &[Method<'_>], errors: &mut Errors) {
    for method in methods {
        let name = method.name.to_string();
        if CLIENT_ITEMS.contains(&name.as_str()) {
            errors.push(syn::Error::new(
                method.name.span(),
                format!("rename this method: `{name}` is generated on `{service}Client`"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CLIENT_ITEMS;

    /// Every function the generator puts on `XClient` (where the service's methods live, so
    /// any same name collides) and every method with `self` on `XClusterClient` (which would
    /// shadow a service method reached through its `Deref`) is in `CLIENT_ITEMS`, so a
    /// service method of that name gets a clear error instead.
    #[test]
    fn every_generated_client_function_that_could_collide_is_a_reserved_name() {
        let item: syn::ItemTrait = syn::parse_quote! {
            pub trait Probe { async fn probe(&self, n: u32) -> u32; }
        };
        let tokens = super::super::expand_trait(&item, &super::super::Options::default()).unwrap();
        let file: syn::File = syn::parse2(tokens).unwrap();
        let mut inspected = 0;
        for item in &file.items {
            let syn::Item::Impl(block) = item else { continue };
            let syn::Type::Path(ty) = &*block.self_ty else { continue };
            let on_client = ty.path.is_ident("ProbeClient");
            if block.trait_.is_some() || !(on_client || ty.path.is_ident("ProbeClusterClient")) {
                continue;
            }
            for member in &block.items {
                let syn::ImplItem::Fn(method) = member else { continue };
                let name = method.sig.ident.to_string();
                inspected += 1;
                if name == "probe" || !(on_client || method.sig.receiver().is_some()) {
                    continue;
                }
                assert!(CLIENT_ITEMS.contains(&name.as_str()), "`{name}` is generated but missing from CLIENT_ITEMS");
            }
        }
        assert!(inspected > 10, "both clients were inspected");
    }
}
